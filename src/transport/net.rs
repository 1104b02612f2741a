//! The host's network interfaces, as the redundancy audit needs them: which
//! interface owns an iSCSI session's initiator address, its subnet, and
//! whether a bond sits under it.
//!
//! [`NetView::current`] reads the kernel (getifaddrs and
//! `/sys/class/net`); everything else is pure so the audit can be tested
//! with any layout.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

/// An IP subnet (`192.168.201.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Subnet {
    /// The subnet of `addr` under a `prefix`-bit mask.
    pub fn of(addr: IpAddr, prefix: u8) -> Subnet {
        match addr {
            IpAddr::V4(a) => {
                let p = prefix.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
                Subnet {
                    network: IpAddr::V4((u32::from(a) & mask).into()),
                    prefix: p,
                }
            }
            IpAddr::V6(a) => {
                let p = prefix.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(p)).unwrap_or(0);
                Subnet {
                    network: IpAddr::V6((u128::from(a) & mask).into()),
                    prefix: p,
                }
            }
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// A network interface with its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetIface {
    pub name: String,
    pub addrs: Vec<IfAddr>,
    /// The bond this interface is, or sits on (a VLAN or bridge over a
    /// bond): its traffic fails over inside the bond, below multipath.
    pub bond: Option<String>,
}

/// Where an initiator address leaves the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress<'a> {
    pub iface: &'a NetIface,
    pub subnet: Subnet,
}

/// The host's interfaces at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetView {
    pub ifaces: Vec<NetIface>,
}

impl NetView {
    /// The interface that owns `addr` (an iSCSI host's `ipaddress`), and
    /// the subnet of that address. A string that is not an IP address has
    /// no egress.
    pub fn egress(&self, addr: &str) -> Option<Egress<'_>> {
        let ip: IpAddr = addr.trim().trim_matches(['[', ']']).parse().ok()?;
        self.ifaces.iter().find_map(|i| {
            i.addrs.iter().find(|a| a.addr == ip).map(|a| Egress {
                iface: i,
                subnet: Subnet::of(ip, a.prefix),
            })
        })
    }

    /// The host's interfaces now. Errors leave an empty view: the audit
    /// then says less, it does not fail.
    pub fn current() -> NetView {
        Self::read(Path::new("/sys/class/net"))
    }

    fn read(sys_net: &Path) -> NetView {
        let mut ifaces: Vec<NetIface> = Vec::new();
        let Ok(list) = nix::ifaddrs::getifaddrs() else {
            return NetView::default();
        };
        for ia in list {
            let (Some(addr), Some(mask)) = (ia.address, ia.netmask) else {
                continue;
            };
            let (ip, prefix) = if let (Some(a), Some(m)) =
                (addr.as_sockaddr_in(), mask.as_sockaddr_in())
            {
                (IpAddr::V4(a.ip()), u32::from(m.ip()).count_ones() as u8)
            } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                (IpAddr::V6(a.ip()), u128::from(m.ip()).count_ones() as u8)
            } else {
                continue;
            };
            let pos = match ifaces.iter().position(|i| i.name == ia.interface_name) {
                Some(p) => p,
                None => {
                    ifaces.push(NetIface {
                        bond: bond_under(sys_net, &ia.interface_name, 0),
                        name: ia.interface_name.clone(),
                        addrs: Vec::new(),
                    });
                    ifaces.len() - 1
                }
            };
            ifaces[pos].addrs.push(IfAddr { addr: ip, prefix });
        }
        NetView { ifaces }
    }
}

/// The bond `name` is, or is stacked on (`lower_*` links of VLANs and
/// bridges), looked up to a few levels.
fn bond_under(sys_net: &Path, name: &str, depth: u8) -> Option<String> {
    let dir = sys_net.join(name);
    if dir.join("bonding").is_dir() {
        return Some(name.to_string());
    }
    if depth >= 4 {
        return None;
    }
    let entries = std::fs::read_dir(&dir).ok()?;
    entries.flatten().find_map(|e| {
        let n = e.file_name();
        let lower = n.to_str()?.strip_prefix("lower_")?.to_string();
        bond_under(sys_net, &lower, depth + 1)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::of("192.168.201.7".parse().unwrap(), 24);
        assert_eq!(s.to_string(), "192.168.201.0/24");
        assert_eq!(
            Subnet::of("10.1.2.3".parse().unwrap(), 0).to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(
            Subnet::of("10.1.2.3".parse().unwrap(), 32).to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(
            Subnet::of("10.1.2.3".parse().unwrap(), 99).to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(
            Subnet::of("fd00::1:2".parse().unwrap(), 64).to_string(),
            "fd00::/64"
        );
    }

    #[test]
    fn egress_finds_the_owner_of_an_address() {
        let v = NetView {
            ifaces: vec![NetIface {
                name: "eth1".into(),
                addrs: vec![IfAddr {
                    addr: "10.1.1.5".parse().unwrap(),
                    prefix: 24,
                }],
                bond: None,
            }],
        };
        let e = v.egress("10.1.1.5").unwrap();
        assert_eq!(e.iface.name, "eth1");
        assert_eq!(e.subnet.to_string(), "10.1.1.0/24");
        assert!(v.egress("10.1.1.6").is_none());
        assert!(v.egress("<NULL>").is_none());
        assert!(v.egress("").is_none());
    }

    #[test]
    fn bonds_are_found_under_vlans_and_bridges() {
        let d = std::env::temp_dir().join(format!("mpathd-net-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for p in ["bond0/bonding", "bond0.10", "xenbr0", "eth0"] {
            std::fs::create_dir_all(d.join(p)).unwrap();
        }
        std::os::unix::fs::symlink(d.join("bond0"), d.join("bond0.10/lower_bond0")).unwrap();
        std::os::unix::fs::symlink(d.join("bond0.10"), d.join("xenbr0/lower_bond0.10")).unwrap();
        assert_eq!(bond_under(&d, "bond0", 0).as_deref(), Some("bond0"));
        assert_eq!(bond_under(&d, "xenbr0", 0).as_deref(), Some("bond0"));
        assert_eq!(bond_under(&d, "eth0", 0), None);
        assert_eq!(bond_under(&d, "missing", 0), None);
        // A loop of links ends at the depth limit.
        std::os::unix::fs::symlink(d.join("eth0"), d.join("eth0/lower_eth0")).unwrap();
        assert_eq!(bond_under(&d, "eth0", 0), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_host_can_be_read() {
        // Loopback at least, wherever this runs.
        let v = NetView::current();
        assert!(v.egress("127.0.0.1").is_some() || v.ifaces.is_empty());
    }
}
