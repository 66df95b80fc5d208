//! A replica's way out at SIGTERM, in two steps: *draining* (`/ready` fails so balancers move
//! away; everything is still served) and *closing* (the listeners stop accepting and event
//! streams end, so their clients reconnect to another replica, or poll).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

pub struct Drain {
    draining: AtomicBool,
    closing: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Drain {
        Drain {
            draining: AtomicBool::new(false),
            closing: watch::Sender::new(false),
        }
    }
}

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn start(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn close(&self) {
        self.start();
        self.closing.send_replace(true);
    }

    /// Resolves once [`Drain::close`] was called.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}
