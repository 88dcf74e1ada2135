//! Network typedefs: `ipv4_addr` (network order u32), `ipv6_addr` (16 bytes), `l4_endpoint`.
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// "10.1.2.3" from 4 bytes in network order.
pub fn ipv4(b: &[u8]) -> String {
    match b.get(..4) {
        Some(a) => Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
        None => String::new(),
    }
}

/// "2001:db8::1" from 16 bytes; 4 bytes (bumblebee's `u32 ipv6_addr`) print as IPv4.
pub fn ipv6(b: &[u8]) -> String {
    match <[u8; 16]>::try_from(b.get(..16).unwrap_or(&[])) {
        Ok(a) => Ipv6Addr::from(a).to_string(),
        Err(_) => ipv4(b),
    }
}

/// Transport protocol name for an IPPROTO_* number.
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmpv6",
        132 => "sctp",
        136 => "udplite",
        _ => return None,
    })
}

/// "10.0.0.1:80/tcp" or "[2001:db8::1]:443/udp" from the `l4_endpoint` layout
/// (addr[16], u16 port in host order, u8 family, u8 proto).
pub fn l4_endpoint(b: &[u8]) -> String {
    if b.len() < 20 {
        return String::new();
    }
    let port = u16::from_ne_bytes([b[16], b[17]]);
    let (family, proto) = (b[18], b[19]);
    let mut s = if family == 2 {
        format!("{}:{port}", ipv4(&b[..4]))
    } else {
        format!("[{}]:{port}", ipv6(&b[..16]))
    };
    match proto_name(proto) {
        Some(n) => {
            let _ = write!(s, "/{n}");
        }
        None if proto != 0 => {
            let _ = write!(s, "/{proto}");
        }
        None => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_addresses() {
        assert_eq!(ipv4(&[10, 1, 2, 3]), "10.1.2.3");
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 1;
        assert_eq!(ipv6(&v6), "2001:db8::1");
        let mut ep = [0u8; 20];
        ep[..4].copy_from_slice(&[127, 0, 0, 1]);
        ep[16..18].copy_from_slice(&8080u16.to_ne_bytes());
        ep[18] = 2;
        ep[19] = 6;
        assert_eq!(l4_endpoint(&ep), "127.0.0.1:8080/tcp");
    }
}
