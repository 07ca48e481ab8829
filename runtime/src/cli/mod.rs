//! Subcommands of the `moat` CLI, one file each.

pub mod r#do;
pub mod shim;

use std::process::ExitCode;

/// Ends this process the way the sandboxed program ended: killed by `signal`.
pub fn die_of(signal: u8) -> ExitCode {
    moat_runtime::sandbox::raise_default(i32::from(signal));
    ExitCode::from(128 + signal)
}

/// Parses `--net NETNS:IFACE`: NETNS is a name under /run/netns or a path.
pub fn parse_net(spec: &str) -> anyhow::Result<moat_runtime::NetAttach> {
    let (ns, iface) = spec
        .rsplit_once(':')
        .filter(|(ns, i)| !ns.is_empty() && !i.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--net wants NETNS:IFACE, got {spec:?}"))?;
    let netns = if ns.contains('/') {
        std::path::PathBuf::from(ns)
    } else {
        std::path::PathBuf::from("/run/netns").join(ns)
    };
    Ok(moat_runtime::NetAttach {
        netns,
        iface: iface.to_string(),
    })
}
