//! Whether a network namespace has a route to an address, from its routing tables as
//! /proc/PID/net shows them (the process's own namespace's view: nothing to enter).
//! A default route counts; reject routes (`ip route add unreachable ...`) do not.
//! IPv4 shows the main table only (policy routing's other tables are not there).

use std::net::IpAddr;

/// Route flags (include/uapi/linux/route.h, ipv6_route.h).
const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// Whether the `/proc/PID/net/route` text has a usable route to `ip`.
pub fn ipv4_has_route(table: &str, ip: std::net::Ipv4Addr) -> bool {
    // The kernel prints each __be32 as a host-order number: compare in that order.
    let dst = u32::from_ne_bytes(ip.octets());
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let hex = |i: usize| f.get(i).and_then(|v| u32::from_str_radix(v, 16).ok());
        match (hex(1), hex(3), hex(7)) {
            (Some(prefix), Some(flags), Some(mask)) => {
                flags & RTF_UP != 0 && flags & RTF_REJECT == 0 && dst & mask == prefix & mask
            }
            _ => false,
        }
    })
}

/// Whether the `/proc/PID/net/ipv6_route` text has a usable route to `ip`.
pub fn ipv6_has_route(table: &str, ip: std::net::Ipv6Addr) -> bool {
    let dst = u128::from_be_bytes(ip.octets());
    table.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(prefix), Some(len), Some(flags)) = (
            f.first().and_then(|v| u128::from_str_radix(v, 16).ok()),
            f.get(1).and_then(|v| u32::from_str_radix(v, 16).ok()),
            f.get(8).and_then(|v| u32::from_str_radix(v, 16).ok()),
        ) else {
            return false;
        };
        let mask = match len {
            0 => 0,
            1..=128 => u128::MAX << (128 - len),
            _ => return false,
        };
        flags & RTF_UP != 0 && flags & RTF_REJECT == 0 && dst & mask == prefix & mask
    })
}

/// The routing table file of `pid` to look `ip` up in, and the address to look up
/// (an IPv4-mapped IPv6 address goes by IPv4).
pub fn table_for(pid: u32, ip: IpAddr) -> (String, IpAddr) {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let file = match ip {
        IpAddr::V4(_) => "route",
        IpAddr::V6(_) => "ipv6_route",
    };
    (format!("/proc/{pid}/net/{file}"), ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A namespace with 10.200.0.0/24 on a veth and an unreachable route (x86: the
    /// numbers are little-endian).
    const V4: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        nwa0\t0000C80A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        *\t0000630A\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

    #[test]
    fn an_ipv4_route_covers_its_prefix_and_a_default_route_everything() {
        assert!(ipv4_has_route(V4, [10, 200, 0, 2].into()));
        assert!(!ipv4_has_route(V4, [10, 201, 0, 2].into()));
        // A reject route is no route.
        assert!(!ipv4_has_route(V4, [10, 99, 0, 1].into()));
        let default = format!("{V4}eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n");
        assert!(ipv4_has_route(&default, [10, 99, 0, 1].into()));
        assert!(ipv4_has_route(&default, [8, 8, 8, 8].into()));
        assert!(!ipv4_has_route("Iface\tDestination\n", [8, 8, 8, 8].into()));
    }

    #[test]
    fn an_ipv6_route_covers_its_prefix_but_a_reject_route_does_not() {
        let table = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 \
            00000000000000000000000000000000 00000100 00000001 00000000 00000001 nwa0\n\
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
            00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert!(ipv6_has_route(table, "fd00::5".parse().unwrap()));
        assert!(!ipv6_has_route(table, "fd01::5".parse().unwrap()));
        assert!(!ipv6_has_route(table, "2001:db8::1".parse().unwrap()));
        let default = table.replace("00200200 lo", "00000003 eth0");
        assert!(ipv6_has_route(&default, "2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn a_mapped_address_is_looked_up_as_ipv4() {
        let (file, ip) = table_for(7, "::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(
            (file.as_str(), ip),
            ("/proc/7/net/route", "10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            table_for(7, "fd00::1".parse().unwrap()).0,
            "/proc/7/net/ipv6_route"
        );
    }
}
