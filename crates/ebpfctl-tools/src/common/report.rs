//! The event loop shared by the snoop tools: poll the ring buffer without a wake-up per
//! record, flush output per batch, notice lost records (stderr line, a JSON record, the
//! metric) and records a stalled stdout did not take (stderr line, the metric), stop on a
//! signal, a deadline or a closed output.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebpfctl_core::consume::{Consumer, LossSource};
use ebpfctl_core::metrics::MetricsServer;
use ebpfctl_core::print::writer::{Sink, Source, Writer};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::live::{Event, Live, ViewSpec};
use super::{fmt, ToolError};

/// How long user space sleeps between looks at the ring buffer when the probe did not wake
/// it (it wakes it early once a backlog builds up). Bounds the delay of a lone event.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A tool's stdout: core's writer thread (ebpfctl_core::print::writer) with one source.
/// Printers append to its buffer directly (no second copy per event); it is handed to the
/// writer when it passes 64 KiB and once per batch. A stalled reader never blocks the tool
/// (records that do not fit in time are dropped and counted); a closed pipe stops it quietly.
pub struct Output {
    w: Writer,
    src: Source,
    /// The live view instead of the table (a terminal, feature `tui`).
    live: Live,
}

impl Output {
    /// Writes to `sink`; dropped records add to `dropped`; waits for room end at `stop`.
    pub fn new(sink: Sink, dropped: Counter, stop: Arc<AtomicBool>) -> Self {
        let mut w = Writer::new(sink).with_stop(stop);
        let src = w.source(dropped);
        Self {
            w,
            src,
            live: Live::default(),
        }
    }

    /// Shows events in a live view of `spec` (if built with it) instead of table lines.
    pub fn live(&mut self, spec: ViewSpec, color: bool) {
        self.live = Live::new(spec, self.src, color);
    }

    /// Events go to the live view: the caller builds an [`Event`], not a table line.
    pub fn is_live(&self) -> bool {
        self.live.on()
    }

    pub fn event(&mut self, ev: Event) {
        self.live.event(ev);
    }

    /// The buffer to append finished lines to; call [`Output::written`] after each.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        self.w.buf()
    }

    /// One finished line was appended.
    pub fn written(&mut self) {
        self.w.record(self.src);
    }

    /// Appends one finished line (the caller includes the newline).
    pub fn line(&mut self, b: &[u8]) {
        self.w.line(self.src, b);
    }

    /// Hands what is buffered to the writer thread.
    pub fn flush(&mut self) {
        self.w.flush();
    }

    pub fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }
}

/// Per-tool Prometheus series: events by kind, lost records, records stdout did not take.
pub struct Metrics {
    pub events: Family<Vec<(String, String)>, Counter>,
    pub lost: Counter,
    pub output_dropped: Counter,
    registry: Arc<Mutex<Registry>>,
    server: Option<MetricsServer>,
}

impl Metrics {
    /// Registers `ebpfctl_<tool>_events_total{<label>=...}`,
    /// `ebpfctl_<tool>_lost_events_total` and `ebpfctl_<tool>_output_dropped_total`; serves
    /// them when `addr` is given.
    pub fn new(tool: &str, addr: Option<SocketAddr>) -> Result<Self, ToolError> {
        let mut reg = Registry::default();
        let events = Family::<Vec<(String, String)>, Counter>::default();
        let lost = Counter::default();
        let output_dropped = Counter::default();
        reg.register(
            format!("ebpfctl_{tool}_events"),
            format!("Events reported by {tool}, by kind"),
            events.clone(),
        );
        reg.register(
            format!("ebpfctl_{tool}_lost_events"),
            format!("Events {tool} lost in the kernel (ring buffer full or in-flight map full)"),
            lost.clone(),
        );
        reg.register(
            format!("ebpfctl_{tool}_output_dropped"),
            format!("Records {tool} read from the kernel but dropped because stdout did not take them in time (a stalled reader); not kernel loss"),
            output_dropped.clone(),
        );
        let registry = Arc::new(Mutex::new(reg));
        let server = match addr {
            Some(a) => Some(MetricsServer::start(a, Arc::clone(&registry))?),
            None => None,
        };
        if let Some(s) = &server {
            eprintln!("{tool}: metrics on http://{}/metrics", s.local_addr());
        }
        Ok(Self {
            events,
            lost,
            output_dropped,
            registry,
            server,
        })
    }

    /// Prometheus text of every series (for tests and summaries).
    pub fn render(&self) -> String {
        ebpfctl_core::metrics::render(&self.registry.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn serving(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(MetricsServer::local_addr)
    }
}

/// Parses `--metrics-addr` ("127.0.0.1:19435", ":19435", "19435").
pub fn parse_metrics_addr(text: &str) -> Result<SocketAddr, ToolError> {
    let t = text.trim();
    let full = if let Ok(port) = t.parse::<u16>() {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = t.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        t.to_string()
    };
    full.parse().map_err(|_| {
        ToolError::BadInput(format!(
            "--metrics-addr {text:?}: expected HOST:PORT like 127.0.0.1:19435"
        ))
    })
}

/// What a snoop tool is asked about its output, whatever it traces.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// JSON lines instead of a table.
    pub json: bool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// The table as a live view (stdout is a terminal; feature `tui`).
    pub live: bool,
    /// Bold and reverse video in the live view (`--color`, `NO_COLOR`).
    pub color: bool,
    pub metrics_addr: Option<SocketAddr>,
    /// Ring buffer size in bytes (a power of two, at least a page).
    pub ring_bytes: u32,
    /// The probe wakes user space once this many bytes are queued (0: every record); at
    /// most a quarter of the ring buffer is used, whatever is asked.
    pub wakeup_bytes: u32,
}

impl StreamConfig {
    /// A table on stdout, no deadline, no metrics, a ring of `ring_bytes`.
    pub fn with_ring(ring_bytes: u32) -> Self {
        Self {
            json: false,
            duration: None,
            live: false,
            color: false,
            metrics_addr: None,
            ring_bytes,
            wakeup_bytes: 64 << 10,
        }
    }

    /// The wake-up threshold handed to the probe.
    pub fn wakeup_param(&self) -> u32 {
        self.wakeup_bytes.min(self.ring_bytes / 4)
    }

    pub fn loop_config(&self, tool: &'static str, stop: Arc<AtomicBool>) -> LoopConfig {
        LoopConfig {
            tool,
            duration: self.duration,
            stop,
            json: self.json,
        }
    }
}

/// What a snoop run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub events: u64,
    pub lost: u64,
    pub decode_errors: u64,
    /// Records stdout did not take in time.
    pub dropped: u64,
}

/// Loop settings.
pub struct LoopConfig {
    pub tool: &'static str,
    pub duration: Option<Duration>,
    pub stop: Arc<AtomicBool>,
    /// Print `{"type":"lost",...}` records on stdout too.
    pub json: bool,
}

/// What the loop saw, for the closing line.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoopSummary {
    pub lost: u64,
    pub dropped: u64,
    pub elapsed: Duration,
}

/// Runs until stopped: `consumer` dispatches records to the tool's callbacks, which write
/// into `out`; after each batch `out` is flushed and losses are reported.
/// `on_loss` runs after records were found lost (e.g. to drop state their loss made stale);
/// `on_poll` after every look at the ring buffer (e.g. to print events that waited).
pub fn run_loop(
    cfg: &LoopConfig,
    consumer: &Consumer<'_>,
    loss: &LossSource,
    metrics: &Metrics,
    out: &std::cell::RefCell<Output>,
    on_loss: &dyn Fn(),
    on_poll: &dyn Fn(),
) -> Result<LoopSummary, ToolError> {
    let start = Instant::now();
    let deadline = cfg.duration.map(|d| start + d);
    let mut lost_seen = 0u64;
    // The total lost so far, reported when it grew.
    let mut check_loss = |out: &mut Output| -> u64 {
        let total = loss.total().unwrap_or(0);
        if total > lost_seen {
            on_loss();
            let delta = total - lost_seen;
            lost_seen = total;
            metrics.lost.inc_by(delta);
            out.live.notice(&format!(
                "{}: {delta} events lost ({total} in total)",
                cfg.tool
            ));
            if cfg.json {
                let mut b = Vec::with_capacity(96);
                b.extend_from_slice(b"{\"type\":\"lost\"");
                fmt::time(
                    &mut b,
                    "time",
                    ebpfctl_core::decode::time::ktime_to_unix_ns(
                        ebpfctl_core::decode::time::monotonic_now_ns(),
                    ),
                );
                fmt::uint(&mut b, "count", delta);
                fmt::uint(&mut b, "total", total);
                b.extend_from_slice(b"}\n");
                out.line(&b);
            }
        }
        lost_seen
    };
    loop {
        let mut timeout = POLL_INTERVAL;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            timeout = timeout.min(left);
        }
        consumer.poll(timeout)?;
        on_poll();
        {
            let mut o = out.borrow_mut();
            let lost = check_loss(&mut o);
            o.flush();
            if let Some(d) = o.w.notice() {
                o.live.notice(&format!("{}: {d}", cfg.tool));
            }
            o.live.counters(lost, metrics.serving());
            let Output { w, live, .. } = &mut *o;
            live.tick(w);
            if w.closed() {
                break;
            }
        }
        if cfg.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    // What is still queued belongs to the run.
    consumer.drain()?;
    on_poll();
    let mut o = out.borrow_mut();
    check_loss(&mut o);
    let Output { w, live, .. } = &mut *o;
    // The terminal back after the last frame, then the notices the view held.
    live.leave(w);
    let done = w.finish();
    live.close();
    if let Some(d) = done {
        eprintln!("{}: {d}", cfg.tool);
    }
    if let Some(e) = w.take_error() {
        return Err(ToolError::Output(e));
    }
    Ok(LoopSummary {
        lost: lost_seen,
        dropped: w.dropped(),
        elapsed: start.elapsed(),
    })
}
