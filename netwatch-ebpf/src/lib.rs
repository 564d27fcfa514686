// Empty host-side library: it lets netwatch/build.rs depend on this crate so cargo
// rebuilds the kernel programs when they change (see aya-build).
#![no_std]
