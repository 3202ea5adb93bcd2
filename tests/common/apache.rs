//! A real Apache 2.4 for the end-to-end tests: `apache2 -f CONF -DFOREGROUND` with a
//! standalone config rendered into a scratch directory (no /etc/apache2: only the modules
//! [`BASE`] loads), each shape in a `<VirtualHost>` on a loopback port of its own, so one
//! Apache serves every shape of a test.
//!
//! Started as root it runs its children as www-data (`User`/`Group`), as Debian's Apache
//! does, so socket and file permissions are exercised for real.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::server::Server;
use super::{free_port, is_root, scratch};

/// How Apache passes requests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// mod_proxy_fcgi, `ProxyPass MOUNT fcgi://ADDR`.
    ProxyFcgi,
    /// The same with `enablereuse=on`: connections to wsgid are kept and reused.
    ProxyFcgiReuse,
    /// mod_proxy_fcgi through `<Location MOUNT> SetHandler "proxy:fcgi://ADDR"`.
    SetHandlerFcgi,
    /// mod_proxy_scgi, `ProxyPass MOUNT scgi://ADDR`.
    ProxyScgi,
}

/// One application behind Apache, in a `<VirtualHost>` of its own.
#[derive(Debug, Clone)]
pub struct Site {
    pub shape: Shape,
    /// wsgid's listener: "127.0.0.1:PORT".
    pub backend: String,
    /// "/" or "/app".
    pub mount: String,
}

impl Site {
    pub fn new(shape: Shape, backend: &str, mount: &str) -> Site {
        Site {
            shape,
            backend: backend.to_string(),
            mount: mount.to_string(),
        }
    }

    /// The directives inside the site's `<VirtualHost>`.
    fn directives(&self) -> String {
        let b = &self.backend;
        // At the root: `ProxyPass / fcgi://B/`. At /app, no trailing slashes, so Apache
        // forwards the bare mount `/app` too (`ProxyPass /app/` would 404 it).
        let (from, to) = if self.mount == "/" {
            ("/".to_string(), "/")
        } else {
            (self.mount.trim_end_matches('/').to_string(), "")
        };
        match self.shape {
            Shape::ProxyFcgi => format!("    ProxyPass {from} fcgi://{b}{to}\n"),
            Shape::ProxyFcgiReuse => {
                format!("    ProxyPass {from} fcgi://{b}{to} enablereuse=on\n")
            }
            Shape::ProxyScgi => format!("    ProxyPass {from} scgi://{b}{to}\n"),
            Shape::SetHandlerFcgi => format!(
                "    <Location {from}>\n        SetHandler \"proxy:fcgi://{b}\"\n    </Location>\n"
            ),
        }
    }
}

/// The user Apache's children run as when it is started as root (Debian's).
pub const USER: &str = "www-data";

/// What every config starts with; `@DIR@` is the scratch directory, `@USER@` the
/// User/Group lines (as root), `@LISTEN@` the Listen lines.
const BASE: &str = "\
ServerRoot @DIR@
PidFile @DIR@/httpd.pid
ErrorLog @DIR@/error.log
LogLevel warn
DefaultRuntimeDir @DIR@
Mutex file:@DIR@ default
ServerName localhost
@USER@
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_fcgi_module /usr/lib/apache2/modules/mod_proxy_fcgi.so
LoadModule proxy_scgi_module /usr/lib/apache2/modules/mod_proxy_scgi.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule authnz_fcgi_module /usr/lib/apache2/modules/mod_authnz_fcgi.so

StartServers 1
ServerLimit 2
ThreadsPerChild 8
MinSpareThreads 8
MaxSpareThreads 16
MaxRequestWorkers 16

TypesConfig /etc/mime.types
LogFormat \"%V:%p %h \\\"%r\\\" %>s %b\" probe
CustomLog @DIR@/access.log probe
DocumentRoot @DIR@/www
<Directory />
    AllowOverride None
    Require all granted
</Directory>
@LISTEN@
";

/// The Apache executable: $APACHE, else /usr/sbin/apache2.
pub fn apache_bin() -> PathBuf {
    std::env::var_os("APACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/apache2"))
}

/// A running Apache, stopped on drop.
pub struct Apache {
    server: Server,
    /// The ports of its virtual hosts, in the order they were given.
    pub ports: Vec<u16>,
}

impl Apache {
    /// Starts one Apache serving each site on a port of its own (`ports`, in the order of
    /// `sites`).
    pub fn start(sites: &[Site]) -> Apache {
        let ports: Vec<u16> = sites.iter().map(|_| free_port()).collect();
        let mut hosts = String::new();
        for (site, port) in sites.iter().zip(&ports) {
            hosts.push_str(&format!(
                "<VirtualHost 127.0.0.1:{port}>\n{}</VirtualHost>\n",
                site.directives()
            ));
        }
        let dir = scratch("apache").keep(); // removed on drop, when the test passed
        Apache::start_conf(&hosts, ports, dir)
    }

    /// Starts Apache with [`BASE`] (which listens on `ports`) followed by `conf`,
    /// everything inside `dir`; waits until every port accepts connections.
    pub fn start_conf(conf: &str, ports: Vec<u16>, dir: PathBuf) -> Apache {
        std::fs::create_dir_all(dir.join("www")).expect("create Apache www dir");
        let user = if is_root() {
            format!("User {USER}\nGroup {USER}\n")
        } else {
            String::new()
        };
        let listen: String = ports
            .iter()
            .map(|p| format!("Listen 127.0.0.1:{p}\n"))
            .collect();
        let full = BASE
            .replace("@USER@", &user)
            .replace("@LISTEN@", &listen)
            .replace("@DIR@", &dir.display().to_string())
            + conf;
        let conf_path = dir.join("httpd.conf");
        std::fs::write(&conf_path, &full).expect("write httpd.conf");
        let mut cmd = Command::new(apache_bin());
        cmd.arg("-f").arg(&conf_path).arg("-DFOREGROUND");
        // As under systemd: a near-empty environment, which what it spawns inherits.
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C");
        let logs = vec![("error.log", dir.join("error.log"))];
        let server = Server::spawn("Apache", cmd, dir, conf_path, logs, &ports);
        Apache { server, ports }
    }

    /// Its scratch directory.
    pub fn dir(&self) -> &Path {
        &self.server.dir
    }

    /// Apache's error log so far.
    pub fn error_log(&self) -> String {
        self.server.log("error.log")
    }

    /// Apache's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Stops Apache and waits for it to exit.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}
