//! The connection table's key: the two ends of a TCP connection, in a fixed order so
//! that both directions find the same entry.

use std::net::SocketAddr;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo: SocketAddr,
    hi: SocketAddr,
}

impl FlowKey {
    pub fn new(a: SocketAddr, b: SocketAddr) -> Self {
        if (a.ip(), a.port()) <= (b.ip(), b.port()) {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_give_one_key() {
        let a: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:21".parse().unwrap();
        assert_eq!(FlowKey::new(a, b), FlowKey::new(b, a));
        let c: SocketAddr = "10.0.0.1:22".parse().unwrap();
        assert_ne!(FlowKey::new(a, b), FlowKey::new(a, c));
    }
}
