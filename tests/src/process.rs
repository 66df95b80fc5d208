//! Child processes of tests (servers, Redis, nginx, node pages) end with the test process,
//! however it ends: a failed assertion drops them (their owners kill them on drop), and a
//! process that exits without dropping them (a server kept in a `static`, a harness that
//! exits or is killed) takes them along, because every child is started with
//! `PR_SET_PDEATHSIG(SIGKILL)`. That signal follows the *thread* that started the child, and
//! test threads end while a shared server is still in use, so all children are started by
//! one thread that lives as long as the process.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type Request = (Command, mpsc::Sender<io::Result<Child>>);

/// Starts `cmd` as a child that dies with this process.
pub fn spawn(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("a thread");
        Mutex::new(tx)
    });
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the signal was set up.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .expect("not poisoned")
        .send((cmd, reply))
        .expect("the spawner thread runs");
    answer.recv().expect("the spawner thread answers")
}
