//! A real load balancer for one test: Debian's `nginx`, round-robin over replicas on loopback,
//! with its own config and prefix folder. Every answer says which replica gave it
//! (`X-Upstream`), so tests can show that consecutive requests land on different replicas.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Balancer {
    child: Child,
    pub port: u16,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Balancer {
    /// Balances `port` over `backends` (ports on 127.0.0.1).
    pub fn start(port: u16, backends: &[u16]) -> Balancer {
        let dir = tempfile::Builder::new()
            .prefix("irma-nginx-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().display().to_string();
        let servers: String = backends
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream irma {{
{servers}        keepalive 64;
        # Idle connections to a replica last less than its drain (--shutdown-grace), so none
        # is left to reuse when it stops accepting (the README says so for operators).
        keepalive_timeout 1s;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 20m;
        location / {{
            proxy_pass http://irma;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Server-sent events stream through unbuffered.
            proxy_buffering off;
            proxy_read_timeout 120s;
            # A connection a closing replica resets before reading the request (it was in the
            # accept queue when the listener closed) is retried on another replica, POSTs too:
            # they are safe to repeat here (a repeated proof or commitment gets the cached
            # answer; a repeated start makes a session no one uses, which expires).
            proxy_next_upstream error timeout non_idempotent;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = crate::process::spawn(cmd).expect("nginx runs (apt-get install nginx-light)");
        let deadline = Instant::now() + crate::PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        Balancer {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failed test shows what nginx saw (refused connections, replicas set aside).
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self._dir.path().join("error.log"));
            eprintln!("[nginx error.log]\n{}", log.unwrap_or_default());
        }
    }
}
