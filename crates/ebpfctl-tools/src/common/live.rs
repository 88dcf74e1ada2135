//! A tool's live view on a terminal (feature `tui`: core's `print::tui::stream`): the tool
//! hands it events as log cells and summary keys instead of table lines. Without the
//! feature, or when it is not asked for, it is off and the tool prints its line table.
use std::net::SocketAddr;
use std::time::Duration;

pub use ebpfctl_core::print::stream_view::{Event, TallySpec, ViewSpec};
use ebpfctl_core::print::writer::{Source, Writer};

/// How often the view is redrawn while events arrive (keys and resizes redraw at once).
pub const REDRAW: Duration = Duration::from_millis(250);

/// The live view, or nothing.
#[derive(Default)]
pub struct Live {
    #[cfg(feature = "tui")]
    tui: Option<ebpfctl_core::print::tui::stream::StreamTui>,
    #[cfg(feature = "tui")]
    held: ebpfctl_core::print::tui::Held,
}

impl Live {
    /// A view of `spec` whose frames go to `src` (entered at the first tick); off when the
    /// `tui` feature is not built.
    #[cfg_attr(not(feature = "tui"), allow(unused_variables))]
    pub fn new(spec: ViewSpec, src: Source, color: bool) -> Live {
        #[cfg(feature = "tui")]
        {
            use ebpfctl_core::print::tui::stream::{StreamTui, StreamView};
            let held = ebpfctl_core::print::tui::Held::default();
            let view = StreamView::new(spec, color);
            Live {
                tui: Some(StreamTui::new(view, src, REDRAW, held.clone())),
                held,
            }
        }
        #[cfg(not(feature = "tui"))]
        Live::default()
    }

    /// The view is up (or will be at the next tick): events go here, not to a table.
    pub fn on(&self) -> bool {
        #[cfg(feature = "tui")]
        return self.tui.is_some();
        #[cfg(not(feature = "tui"))]
        false
    }

    #[cfg_attr(not(feature = "tui"), allow(unused_variables))]
    pub fn event(&mut self, ev: Event) {
        #[cfg(feature = "tui")]
        if let Some(t) = &mut self.tui {
            t.event(ev);
        }
    }

    /// Lost events so far and the metrics address, for the status line.
    #[cfg_attr(not(feature = "tui"), allow(unused_variables))]
    pub fn counters(&mut self, lost: u64, metrics: Option<SocketAddr>) {
        #[cfg(feature = "tui")]
        if let Some(t) = &mut self.tui {
            let v = t.view();
            v.lost = lost;
            v.metrics = metrics;
        }
    }

    /// Keys and a redraw when due (never blocks); a quit key raises the stop flag.
    #[cfg_attr(not(feature = "tui"), allow(unused_variables))]
    pub fn tick(&mut self, w: &mut Writer) {
        #[cfg(feature = "tui")]
        if let Some(t) = &mut self.tui {
            t.tick(w);
        }
    }

    /// Prints `msg` (a notice for stderr), or keeps it for the status line and for after
    /// the view while the view is up.
    pub fn notice(&self, msg: &str) {
        #[cfg(feature = "tui")]
        if self.held.hold(msg) {
            return;
        }
        eprintln!("{msg}");
    }

    /// The end: the leave sequence after the last frame is queued in `w`; call
    /// [`Live::close`] once `w` is finished.
    #[cfg_attr(not(feature = "tui"), allow(unused_variables))]
    pub fn leave(&mut self, w: &mut Writer) {
        #[cfg(feature = "tui")]
        if let Some(t) = &mut self.tui {
            t.leave(w);
        }
    }

    /// Raw mode off; the notices held meanwhile go to stderr.
    pub fn close(&mut self) {
        #[cfg(feature = "tui")]
        {
            self.tui = None;
            for m in self.held.take() {
                eprintln!("{m}");
            }
        }
    }
}
