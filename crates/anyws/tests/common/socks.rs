//! A small SOCKS5 proxy (RFC 1928, with RFC 1929 user name and password) for the proxy
//! tests: it records what each client asked for, then tunnels to one fixed upstream address
//! (whatever the target, so a test never reaches anything but its own server), refuses with
//! a chosen reply, or misbehaves in a chosen way.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The target a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Ip(IpAddr, u16),
    Name(String, u16),
}

/// What one client sent.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The authentication methods it offered.
    pub methods: Vec<u8>,
    /// The user name and password, if it sent them.
    pub credentials: Option<(String, String)>,
    pub target: Option<Target>,
}

/// How the proxy answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Connects to the upstream address and tunnels.
    Tunnel,
    /// Answers the CONNECT request with this reply code.
    Refuse(u8),
    /// Answers the greeting with these bytes, then waits for the client to go.
    RawGreetingReply(Vec<u8>),
    /// Accepts the method, then answers the CONNECT request with these bytes, then sends
    /// garbage until the client goes.
    RawReplyThenEndless(Vec<u8>),
    /// Reads the greeting and never answers.
    Silent,
}

pub struct Socks {
    listener: TcpListener,
    upstream: SocketAddr,
    credentials: Option<(String, String)>,
    behaviour: Behaviour,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Socks {
    /// A proxy on 127.0.0.1 tunnelling to `upstream` (`ws://127.0.0.1:PORT` or an address).
    pub async fn bind(upstream: &str) -> Socks {
        let upstream = upstream
            .split("://")
            .last()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .expect("an upstream address with an IP");
        Socks {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            upstream,
            credentials: None,
            behaviour: Behaviour::Tunnel,
            seen: Arc::default(),
        }
    }

    /// Demands this user name and password (method 2).
    pub fn require(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    pub fn behave(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }

    /// `socks5://127.0.0.1:PORT` (or another scheme).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.listener.local_addr().unwrap())
    }

    /// What the clients sent, one entry per connection (shared; valid after `start`).
    pub fn seen(&self) -> Arc<Mutex<Vec<Seen>>> {
        self.seen.clone()
    }

    /// Serves in a spawned task until the runtime ends.
    pub fn start(self) {
        tokio::spawn(async move {
            while let Ok((client, _)) = self.listener.accept().await {
                let seen = self.seen.clone();
                let index = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(Seen::default());
                    seen.len() - 1
                };
                let (upstream, credentials, behaviour) = (
                    self.upstream,
                    self.credentials.clone(),
                    self.behaviour.clone(),
                );
                tokio::spawn(async move {
                    let record = Record { seen, index };
                    let _ = serve(client, upstream, credentials, behaviour, &record).await;
                });
            }
        });
    }
}

/// One connection's entry in the proxy's record.
struct Record {
    seen: Arc<Mutex<Vec<Seen>>>,
    index: usize,
}

impl Record {
    fn set(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.seen.lock().unwrap()[self.index])
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    credentials: Option<(String, String)>,
    behaviour: Behaviour,
    record: &Record,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    assert_eq!(head[0], 5, "the client speaks SOCKS5");
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods).await?;
    record.set(|s| s.methods = methods.clone());
    match &behaviour {
        Behaviour::Silent => return hold(client).await,
        Behaviour::RawGreetingReply(bytes) => {
            client.write_all(bytes).await?;
            return hold(client).await;
        }
        _ => {}
    }
    match &credentials {
        None => client.write_all(&[5, 0]).await?,
        Some(_) if !methods.contains(&2) => {
            client.write_all(&[5, 0xFF]).await?;
            return hold(client).await;
        }
        Some((user, password)) => {
            client.write_all(&[5, 2]).await?;
            let given_user = read_field(&mut client, true).await?;
            let given_password = read_field(&mut client, false).await?;
            record.set(|s| s.credentials = Some((given_user.clone(), given_password.clone())));
            if (&given_user, &given_password) != (user, password) {
                client.write_all(&[1, 1]).await?;
                return hold(client).await;
            }
            client.write_all(&[1, 0]).await?;
        }
    }
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    assert_eq!(request[..3], [5, 1, 0], "a CONNECT request");
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            Err(IpAddr::from(ip))
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            Err(IpAddr::from(ip))
        }
        3 => {
            let len = client.read_u8().await?;
            let mut name = vec![0u8; len as usize];
            client.read_exact(&mut name).await?;
            Ok(String::from_utf8(name).unwrap())
        }
        other => panic!("address type {other}"),
    };
    let port = client.read_u16().await?;
    let target = match host {
        Ok(name) => Target::Name(name, port),
        Err(ip) => Target::Ip(ip, port),
    };
    record.set(|s| s.target = Some(target.clone()));
    match behaviour {
        Behaviour::Refuse(code) => {
            client.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            hold(client).await
        }
        Behaviour::RawReplyThenEndless(bytes) => {
            client.write_all(&bytes).await?;
            let garbage = [b'x'; 4096];
            loop {
                client.write_all(&garbage).await?;
            }
        }
        _ => {
            let mut server = TcpStream::connect(upstream).await?;
            // A reply with a domain-name bound address, the longest kind.
            let mut reply = vec![5, 0, 0, 3, 9];
            reply.extend_from_slice(b"bound.com");
            reply.extend_from_slice(&[0x1F, 0x90]);
            client.write_all(&reply).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
            Ok(())
        }
    }
}

/// Reads an RFC 1929 field (with the version byte first for the user name).
async fn read_field(client: &mut TcpStream, with_version: bool) -> std::io::Result<String> {
    if with_version {
        assert_eq!(client.read_u8().await?, 1, "RFC 1929 version 1");
    }
    let len = client.read_u8().await?;
    let mut field = vec![0u8; len as usize];
    client.read_exact(&mut field).await?;
    Ok(String::from_utf8(field).unwrap())
}

/// Keeps the connection open until the client closes it.
async fn hold(mut client: TcpStream) -> std::io::Result<()> {
    let mut sink = [0u8; 512];
    while client.read(&mut sink).await? > 0 {}
    Ok(())
}
