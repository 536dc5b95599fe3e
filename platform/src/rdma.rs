//! RDMA probe: which verbs devices this machine has, and whether their ports can carry RoCEv2.
//!
//! The server asks once at start-up and logs the answer whole, so an operator sees what was
//! probed and found: no devices (the usual case on developer machines and CI hosts, where
//! libibverbs answers `ENOSYS`), devices with no active port, or the device and port chosen.
//!
//! Only libibverbs is asked (through rdma-sys); GID types come from sysfs, which is where the
//! kernel publishes them (`/sys/class/infiniband/<dev>/ports/<port>/gid_attrs/types/<index>`).

use std::ffi::CStr;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

/// `IBV_LINK_LAYER_ETHERNET` from `<infiniband/verbs.h>` (a `#define`, so bindgen does not
/// export it): RoCE runs on Ethernet link layers, InfiniBand on `IBV_LINK_LAYER_INFINIBAND` (1).
const LINK_LAYER_ETHERNET: u8 = 2;

/// How many GID table entries are read per port: RoCE devices list one GID per IP address and
/// RoCE version, so a handful covers every configured address.
const GIDS_PER_PORT_MAX: i32 = 16;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdmaProbe {
    /// libibverbs listed no device; `reason` says what it answered.
    NoDevices { reason: String },
    /// The devices found, in libibverbs' order.
    Devices(Vec<RdmaDevice>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdmaDevice {
    pub name: String,
    /// Set when the device is listed but cannot be opened or queried.
    pub error: Option<String>,
    pub queue_pairs_max: u32,
    pub ports: Vec<RdmaPort>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdmaPort {
    /// Verbs port numbers start at 1.
    pub number: u8,
    pub active: bool,
    pub ethernet: bool,
    pub active_mtu_bytes: u32,
    pub gids: Vec<RdmaGid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdmaGid {
    pub index: u32,
    pub raw: [u8; 16],
    /// The kernel's word for it ("RoCE v2", "RoCE v1", "IB/RoCE v1"), when sysfs has one.
    pub kind: Option<String>,
}

impl RdmaGid {
    /// The IPv4 address of an IPv4-mapped GID (`::ffff:a.b.c.d`), which RoCEv2 over IPv4 uses.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        let (prefix, address) = self.raw.split_at(12);
        let mapped = prefix[..10].iter().all(|&byte| byte == 0) && prefix[10..] == [0xff, 0xff];
        mapped.then(|| Ipv4Addr::new(address[0], address[1], address[2], address[3]))
    }

    pub fn is_roce_v2(&self) -> bool {
        self.kind.as_deref() == Some("RoCE v2")
    }
}

impl RdmaPort {
    /// The first IPv4 address this port carries RoCEv2 for: what RDMA CM clients connect to.
    pub fn roce_v2_ipv4(&self) -> Option<Ipv4Addr> {
        self.gids
            .iter()
            .filter(|gid| gid.is_roce_v2())
            .find_map(RdmaGid::ipv4)
    }
}

impl RdmaProbe {
    /// The first device with an active port, or the one named `wanted`, with that port.
    pub fn choose(&self, wanted: Option<&str>) -> Option<(&RdmaDevice, &RdmaPort)> {
        let RdmaProbe::Devices(devices) = self else {
            return None;
        };
        devices
            .iter()
            .filter(|device| wanted.is_none_or(|name| device.name == name))
            .find_map(|device| {
                device
                    .ports
                    .iter()
                    .find(|port| port.active)
                    .map(|port| (device, port))
            })
    }
}

impl fmt::Display for RdmaProbe {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let devices = match self {
            RdmaProbe::NoDevices { reason } => {
                return write!(formatter, "no RDMA device ({reason})")
            }
            RdmaProbe::Devices(devices) => devices,
        };
        for (position, device) in devices.iter().enumerate() {
            if position > 0 {
                write!(formatter, "; ")?;
            }
            write!(formatter, "{}", device.name)?;
            if let Some(error) = &device.error {
                write!(formatter, " (unusable: {error})")?;
                continue;
            }
            for port in &device.ports {
                let state = if port.active { "active" } else { "down" };
                let link = if port.ethernet {
                    "Ethernet"
                } else {
                    "InfiniBand"
                };
                write!(
                    formatter,
                    " port {} {state} {link} mtu {}",
                    port.number, port.active_mtu_bytes
                )?;
                for gid in port.gids.iter().filter(|gid| gid.is_roce_v2()) {
                    if let Some(address) = gid.ipv4() {
                        write!(formatter, " RoCEv2 gid[{}]={address}", gid.index)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Asks libibverbs for every device and port. Never fails: what cannot be read is reported in
/// the answer.
pub fn probe() -> RdmaProbe {
    let mut count: i32 = 0;
    // SAFETY: `count` is a valid out-pointer; the list is freed below with ibv_free_device_list.
    let list = unsafe { rdma_sys::ibv_get_device_list(&mut count) };
    if list.is_null() {
        let error = std::io::Error::last_os_error();
        return RdmaProbe::NoDevices {
            reason: format!(
                "libibverbs lists none: {error}; /sys/class/infiniband {}",
                sysfs_word()
            ),
        };
    }
    let mut devices = Vec::new();
    for position in 0..usize::try_from(count).unwrap_or(0) {
        // SAFETY: ibv_get_device_list returned `count` valid device pointers in `list`.
        let device = unsafe { *list.add(position) };
        devices.push(probe_device(device));
    }
    // SAFETY: `list` came from ibv_get_device_list and no device pointer is used after this.
    unsafe { rdma_sys::ibv_free_device_list(list) };
    if devices.is_empty() {
        return RdmaProbe::NoDevices {
            reason: format!(
                "libibverbs lists none; /sys/class/infiniband {}",
                sysfs_word()
            ),
        };
    }
    RdmaProbe::Devices(devices)
}

fn sysfs_word() -> &'static str {
    if Path::new("/sys/class/infiniband").exists() {
        "exists"
    } else {
        "is absent (no RDMA driver loaded)"
    }
}

fn probe_device(device: *mut rdma_sys::ibv_device) -> RdmaDevice {
    // SAFETY: `device` is a live entry of the device list; the name is a NUL-terminated string
    // owned by libibverbs that we copy before the list is freed.
    let name = unsafe { CStr::from_ptr(rdma_sys::ibv_get_device_name(device)) }
        .to_string_lossy()
        .into_owned();
    let mut answer = RdmaDevice {
        name,
        error: None,
        queue_pairs_max: 0,
        ports: Vec::new(),
    };
    // SAFETY: `device` is live; the context is closed below on every path.
    let context = unsafe { rdma_sys::ibv_open_device(device) };
    if context.is_null() {
        answer.error = Some(format!(
            "ibv_open_device: {}",
            std::io::Error::last_os_error()
        ));
        return answer;
    }
    // SAFETY: ibv_device_attr is plain data for which all-zero bytes are valid.
    let mut attributes: rdma_sys::ibv_device_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `context` is open and `attributes` is a valid out-pointer of the right type.
    if unsafe { rdma_sys::ibv_query_device(context, &mut attributes) } != 0 {
        answer.error = Some(format!(
            "ibv_query_device: {}",
            std::io::Error::last_os_error()
        ));
    } else {
        answer.queue_pairs_max = u32::try_from(attributes.max_qp).unwrap_or(0);
        for number in 1..=attributes.phys_port_cnt {
            answer
                .ports
                .extend(probe_port(context, &answer.name, number));
        }
    }
    // SAFETY: `context` was opened above and nothing refers to it any more.
    unsafe { rdma_sys::ibv_close_device(context) };
    answer
}

fn probe_port(context: *mut rdma_sys::ibv_context, device: &str, number: u8) -> Option<RdmaPort> {
    // SAFETY: ibv_port_attr is plain data for which all-zero bytes are valid.
    let mut attributes: rdma_sys::ibv_port_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `context` is open, `number` is within phys_port_cnt, `attributes` is a valid
    // out-pointer; ___ibv_query_port is rdma-sys' form of verbs.h's inline ibv_query_port.
    if unsafe { rdma_sys::___ibv_query_port(context, number, &mut attributes) } != 0 {
        return None;
    }
    let gid_count = attributes.gid_tbl_len.clamp(0, GIDS_PER_PORT_MAX);
    let gids = (0..gid_count)
        .filter_map(|index| {
            // SAFETY: ibv_gid is a plain 16-byte union; all-zero is valid.
            let mut gid: rdma_sys::ibv_gid = unsafe { std::mem::zeroed() };
            // SAFETY: `context` is open, `index` < gid_tbl_len, `gid` is a valid out-pointer.
            let status = unsafe { rdma_sys::ibv_query_gid(context, number, index, &mut gid) };
            // SAFETY: every bit pattern of the union is a valid `[u8; 16]`.
            let raw = unsafe { gid.raw };
            (status == 0 && raw != [0u8; 16]).then(|| {
                let index = index as u32;
                let kind = gid_kind(device, number, index);
                RdmaGid { index, raw, kind }
            })
        })
        .collect();
    Some(RdmaPort {
        number,
        active: attributes.state == rdma_sys::ibv_port_state::IBV_PORT_ACTIVE,
        ethernet: attributes.link_layer == LINK_LAYER_ETHERNET,
        active_mtu_bytes: mtu_bytes(attributes.active_mtu),
        gids,
    })
}

fn gid_kind(device: &str, port: u8, index: u32) -> Option<String> {
    let path = format!("/sys/class/infiniband/{device}/ports/{port}/gid_attrs/types/{index}");
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// `enum ibv_mtu` counts 256 << (n - 1) bytes.
fn mtu_bytes(mtu: rdma_sys::ibv_mtu::Type) -> u32 {
    if (1..=5).contains(&mtu) {
        256 << (mtu - 1)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(number: u8, active: bool) -> RdmaPort {
        RdmaPort {
            number,
            active,
            ethernet: true,
            active_mtu_bytes: 1024,
            gids: Vec::new(),
        }
    }

    fn device(name: &str, ports: Vec<RdmaPort>) -> RdmaDevice {
        RdmaDevice {
            name: name.into(),
            error: None,
            queue_pairs_max: 64,
            ports,
        }
    }

    #[test]
    fn ipv4_mapped_gids_are_recognised() {
        let mut raw = [0u8; 16];
        raw[10] = 0xff;
        raw[11] = 0xff;
        raw[12..].copy_from_slice(&[10, 0, 0, 1]);
        let gid = RdmaGid {
            index: 1,
            raw,
            kind: Some("RoCE v2".into()),
        };
        assert_eq!(gid.ipv4(), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(gid.is_roce_v2());
        let link_local = RdmaGid {
            index: 0,
            raw: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
            kind: None,
        };
        assert_eq!(link_local.ipv4(), None);
    }

    #[test]
    fn choose_takes_the_first_active_port_or_the_named_device() {
        let probe = RdmaProbe::Devices(vec![
            device("mlx5_0", vec![port(1, false)]),
            device("rxe0", vec![port(1, false), port(2, true)]),
            device("rxe1", vec![port(1, true)]),
        ]);
        let (chosen, chosen_port) = probe.choose(None).unwrap();
        assert_eq!((chosen.name.as_str(), chosen_port.number), ("rxe0", 2));
        assert_eq!(probe.choose(Some("rxe1")).unwrap().0.name, "rxe1");
        assert!(probe.choose(Some("mlx5_0")).is_none());
        assert!(RdmaProbe::NoDevices {
            reason: "none".into()
        }
        .choose(None)
        .is_none());
    }

    #[test]
    fn mtu_enum_maps_to_bytes() {
        assert_eq!(mtu_bytes(rdma_sys::ibv_mtu::IBV_MTU_256), 256);
        assert_eq!(mtu_bytes(rdma_sys::ibv_mtu::IBV_MTU_4096), 4096);
        assert_eq!(mtu_bytes(0), 0);
    }

    /// On a host without RDMA (the developer machines and CI) the probe must say so, not crash;
    /// on a host with devices, every device it lists must have a name.
    #[test]
    fn probe_answers_on_this_host() {
        match probe() {
            RdmaProbe::NoDevices { reason } => {
                assert!(reason.contains("libibverbs lists none"), "{reason}")
            }
            RdmaProbe::Devices(devices) => {
                assert!(devices.iter().all(|device| !device.name.is_empty()))
            }
        }
    }
}
