//! The peers the benches measure against, run as child processes on loopback: nginx as a
//! static file server, as a caching reverse proxy (the classic edge) in front of our origin,
//! and with its RTMP module as the classic RTMP → HLS origin. Each stops when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped (a failed run leaves no server behind).
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// A running nginx and what it listens on.
pub struct Nginx {
    pub process: KillOnDrop,
    pub http_port: u16,
    pub rtmp_port: Option<u16>,
    pub dir: PathBuf,
}

impl Nginx {
    /// CPU seconds nginx has used: its master and every worker (`/proc`).
    pub fn cpu_secs(&self) -> f64 {
        let mut pids = vec![self.process.pid()];
        if let Ok(children) =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.process.pid()))
        {
            pids.extend(children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
        pids.iter().map(|p| process_cpu_secs(*p)).sum()
    }

    /// The access log (`$upstream_cache_status` per request, for the caching proxy).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default()
    }
}

/// Resident memory of process `pid`, MiB.
pub fn process_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) of process `pid`.
pub fn process_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn common(dir: &Path) -> String {
    format!(
        "worker_processes 2;\npid {pid};\nerror_log {dir}/logs/error.log warn;\n",
        pid = dir.join("nginx.pid").display(),
        dir = dir.display()
    )
}

fn http_common(dir: &Path) -> String {
    format!(
        "  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n\
           types {{ application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; video/mp2t ts; }}\n\
           client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;\n\
           uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;\n",
        dir = dir.display()
    )
}

/// Starts nginx with `conf` in `dir`, waiting until `port` accepts.
fn run(dir: &Path, conf: String, port: u16) -> Result<KillOnDrop, String> {
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let child = Command::new("nginx")
        .args(["-e", "stderr", "-p"])
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .map_err(|e| format!("run nginx (scripts/install-system-deps.sh bench installs it): {e}"))?;
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > until {
            return Err(format!(
                "nginx did not listen on {port}: {}",
                std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

/// nginx serving `root` as static files.
pub fn static_files(dir: &Path, root: &Path) -> Result<Nginx, String> {
    let port = free_port();
    let conf = format!(
        "{}events {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n{}  server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
        common(dir),
        http_common(dir),
        root = root.display(),
    );
    Ok(Nginx {
        process: run(dir, conf, port)?,
        http_port: port,
        rtmp_port: None,
        dir: dir.to_path_buf(),
    })
}

/// nginx as a caching reverse proxy in front of `origin` (`127.0.0.1:port`), set up as a CDN
/// edge for LL-HLS would be: the origin's Cache-Control decides what is kept, concurrent
/// misses for one URL wait for one upstream request (`proxy_cache_lock`), blocking playlist
/// requests are keyed with their query, upstream connections are kept alive.
pub fn caching_proxy(dir: &Path, origin: std::net::SocketAddr) -> Result<Nginx, String> {
    let port = free_port();
    let conf = format!(
        "{}events {{ worker_connections 8192; }}\nhttp {{\n\
           log_format cache '$upstream_cache_status $request_uri';\n\
           access_log {dir}/logs/access.log cache;\n{}\
           proxy_cache_path {dir}/cache levels=1:2 keys_zone=hls:16m max_size=1g inactive=60s use_temp_path=off;\n\
           upstream origin {{ server {origin}; keepalive 64; }}\n\
           server {{\n    listen 127.0.0.1:{port} backlog=8192;\n\
             location / {{\n      proxy_pass http://origin;\n      proxy_http_version 1.1;\n\
               proxy_set_header Connection \"\";\n      proxy_cache hls;\n      proxy_cache_key $uri$is_args$args;\n\
               proxy_cache_lock on;\n      proxy_cache_lock_timeout 10s;\n      proxy_cache_lock_age 10s;\n\
               proxy_read_timeout 15s;\n      add_header X-Cache $upstream_cache_status;\n    }}\n  }}\n}}\n",
        common(dir),
        http_common(dir),
        dir = dir.display(),
    );
    Ok(Nginx {
        process: run(dir, conf, port)?,
        http_port: port,
        rtmp_port: None,
        dir: dir.to_path_buf(),
    })
}

/// nginx with the RTMP module (`libnginx-mod-rtmp`) as the classic origin: RTMP in on
/// application `live`, HLS out (MPEG-TS segments of `fragment_secs`, a playlist of 6 s) on
/// `/hls/{stream}.m3u8`.
pub fn rtmp_origin(dir: &Path, fragment_secs: u32) -> Result<Nginx, String> {
    let (http, rtmp) = (free_port(), free_port());
    let hls = dir.join("hls");
    std::fs::create_dir_all(&hls).map_err(|e| e.to_string())?;
    let conf = format!(
        "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n{}events {{ worker_connections 4096; }}\n\
         rtmp {{\n  server {{\n    listen 127.0.0.1:{rtmp};\n    application live {{\n      live on;\n\
             hls on;\n      hls_path {hls};\n      hls_fragment {fragment_secs}s;\n      hls_playlist_length 6s;\n\
         }}\n  }}\n}}\n\
         http {{\n  access_log off;\n{}  server {{\n    listen 127.0.0.1:{http};\n\
           location /hls/ {{ alias {hls}/; add_header Cache-Control no-cache; add_header Access-Control-Allow-Origin *; }}\n  }}\n}}\n",
        common(dir).replace("worker_processes 2;", "worker_processes 1;"),
        http_common(dir),
        hls = hls.display(),
    );
    Ok(Nginx {
        process: run(dir, conf, http)?,
        http_port: http,
        rtmp_port: Some(rtmp),
        dir: dir.to_path_buf(),
    })
}

/// nginx's version line.
pub fn nginx_version() -> String {
    Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default()
}
