//! The container flags shared by execsnoop, opensnoop, observe and run (docs/containers.md):
//! which containers to show (`--container`, `--pod`, `--namespace`), whether events carry
//! their container (`--containers`), container labels on metrics.
use ebpfctl_container::Selector;
use ebpfctl_tools::common::containers::{ContainerOptions, Show};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowArg {
    /// When this host has containers (a runtime's state, or a container's cgroup).
    Auto,
    Always,
    Never,
}

/// `--container`, `--pod`, `--namespace`: the tools' and the runner's filter.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only tasks of this container: its name or (a prefix of) its id; repeatable (any of
    /// them). In the kernel, by cgroup id.
    #[arg(long = "container", value_name = "NAME|ID")]
    pub container: Vec<String>,
    /// Only tasks of containers of this Kubernetes pod.
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// Only tasks of containers of pods in this Kubernetes namespace.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
}

impl FilterArgs {
    /// The selector; empty values are refused.
    pub fn selector(&self) -> anyhow::Result<Selector> {
        if self.container.iter().any(|c| c.trim().is_empty()) {
            anyhow::bail!("--container: expected a container name or id");
        }
        for (flag, v) in [("--pod", &self.pod), ("--namespace", &self.namespace)] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                anyhow::bail!("{flag}: expected a name");
            }
        }
        Ok(Selector {
            containers: self.container.clone(),
            pod: self.pod.clone(),
            namespace: self.namespace.clone(),
        })
    }
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ContainerArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Add each event's container (runtime, id, name; pod, namespace): auto (default for
    /// the tools: every event in a container, no table column unless filtering), always
    /// (with the column), never.
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, default_missing_value = "always")]
    pub containers: Option<ShowArg>,
    /// Container, pod and namespace labels on metrics (a series per container: see
    /// docs/metrics.md).
    #[arg(long)]
    pub metrics_container_labels: bool,
}

impl ContainerArgs {
    /// The options, with `default` when `--containers` is not given; empty filter values
    /// are refused.
    pub fn options(&self, default: Show) -> anyhow::Result<ContainerOptions> {
        let selector = self.filter.selector()?;
        Ok(ContainerOptions {
            show: match self.containers {
                None => default,
                Some(ShowArg::Auto) => Show::Auto,
                Some(ShowArg::Always) => Show::Always,
                Some(ShowArg::Never) => Show::Never,
            },
            selector,
            metric_labels: self.metrics_container_labels,
            ..Default::default()
        })
    }
}
