//! Several brokers behind one name: a broker address whose host is a name (`http://broker:7440`
//! in compose, a DNS name listing every broker host) is resolved to all its addresses, and the
//! client balances its calls over them (tonic's balanced channel, power of two choices).
//!
//! The set is refreshed every [`Discovery::refresh`]: the name is resolved again and, when it
//! has several addresses, each is probed with a TCP connect, so a broker that went away
//! (killed container, stopped host) leaves the set within one refresh even where its name
//! still resolves, and one that came up (scaled out, restarted with a new address) joins it.
//! A name that does not resolve (yet: compose starts a controller before the broker's
//! container has an address) leaves the name itself in the set, so calls fail fast with a
//! connection error, as they did before this module, instead of waiting for an address.
//!
//! An address whose host is an IP literal (`http://127.0.0.1:7440`, the default) does not
//! come here: it is one plain channel, as before.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::codegen::http::Uri;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

/// Resolves a host and port to its socket addresses.
pub type Resolver =
    Arc<dyn Fn(&str, u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// The system's resolver (`/etc/hosts`, DNS: what `getaddrinfo` answers).
pub fn system_resolver() -> Resolver {
    Arc::new(|host: &str, port: u16| {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    })
}

/// How a named broker address is resolved and kept fresh.
#[derive(Clone)]
pub struct Discovery {
    pub resolver: Resolver,
    /// How often the name is resolved and its addresses probed again.
    pub refresh: Duration,
    /// How long one address's TCP probe may take before it counts as down.
    pub probe_timeout: Duration,
}

impl Default for Discovery {
    fn default() -> Discovery {
        Discovery {
            resolver: system_resolver(),
            refresh: Duration::from_secs(2),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("refresh", &self.refresh)
            .field("probe_timeout", &self.probe_timeout)
            .finish_non_exhaustive()
    }
}

/// Where a broker address points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IP literal (or something that is not a plain `scheme://host:port`): one channel.
    Single,
    /// A host name: resolved, balanced over its addresses.
    Name {
        scheme: String,
        host: String,
        port: u16,
    },
}

/// Tells a named address from a single one (`uri` is already a valid URI).
pub fn target(uri: &Uri) -> Target {
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return Target::Single;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return Target::Single;
    }
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Target::Name {
        scheme: scheme.to_string(),
        host: host.to_string(),
        port,
    }
}

/// One member of a balanced set: a resolved address, or the name itself while it resolves
/// to nothing (tonic then resolves it on each connect attempt and reports why it fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Member {
    Name,
    Addr(SocketAddr),
}

/// The set to balance over next, given the current one, what the name resolved to, and which
/// of those addresses answered a probe (only probed when there are several):
/// - resolution failed or gave nothing: keep the current set (a DNS hiccup must not drop
///   live brokers), or the name itself when there is none yet;
/// - one address: that one (there is nothing to choose between);
/// - several: those that answered; none did: all of them (calls then fail with the
///   connection's own error, and the next refresh tries again).
pub fn desired(
    current: &BTreeSet<Member>,
    resolved: Option<&[SocketAddr]>,
    reachable: &BTreeSet<SocketAddr>,
) -> BTreeSet<Member> {
    match resolved {
        None | Some([]) if current.is_empty() => BTreeSet::from([Member::Name]),
        None | Some([]) => current.clone(),
        Some([one]) => BTreeSet::from([Member::Addr(*one)]),
        Some(all) => {
            let up: BTreeSet<Member> = all
                .iter()
                .filter(|a| reachable.contains(a))
                .map(|a| Member::Addr(*a))
                .collect();
            if up.is_empty() {
                all.iter().map(|a| Member::Addr(*a)).collect()
            } else {
                up
            }
        }
    }
}

/// Which of `addrs` accept a TCP connection within `timeout` (probed at once, in parallel).
pub async fn probe(addrs: &[SocketAddr], timeout: Duration) -> BTreeSet<SocketAddr> {
    let checks = addrs.iter().map(|addr| async move {
        let ok = matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        );
        ok.then_some(*addr)
    });
    futures::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Builds the endpoint of one member of a balanced set (`None`: not a valid address).
pub(crate) type MakeEndpoint = Arc<dyn Fn(&str) -> Option<Endpoint> + Send + Sync>;

/// A named broker address, resolved and balanced; built by [`crate::client`].
pub(crate) struct Balanced {
    pub addr: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub discovery: Discovery,
    /// Builds the endpoint of one member (the client's timeouts and keep-alives).
    pub endpoint: MakeEndpoint,
}

impl Balanced {
    fn uri_of(&self, member: Member) -> String {
        match member {
            Member::Name => self.addr.clone(),
            Member::Addr(a) => format!("{}://{a}", self.scheme),
        }
    }

    /// Resolves the name once, sorted, without duplicates.
    pub async fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let mut addrs = (self.discovery.resolver)(&self.host, self.port).await?;
        addrs.sort();
        addrs.dedup();
        Ok(addrs)
    }

    /// One refresh: resolve, probe when there are several addresses, decide.
    async fn next(&self, current: &BTreeSet<Member>) -> BTreeSet<Member> {
        let resolved = match self.resolve().await {
            Ok(addrs) => Some(addrs),
            Err(err) => {
                tracing::debug!(addr = %self.addr, %err, "broker name does not resolve; keeping the current addresses");
                None
            }
        };
        let reachable = match resolved.as_deref() {
            Some(many @ [_, _, ..]) => probe(many, self.discovery.probe_timeout).await,
            _ => BTreeSet::new(),
        };
        desired(current, resolved.as_deref(), &reachable)
    }

    /// Starts the balanced channel over `initial` (empty: the first refresh runs at once) and
    /// the task that keeps its set fresh; the task ends when the channel is dropped.
    pub fn start(self, initial: BTreeSet<Member>) -> (Channel, tokio::task::JoinHandle<()>) {
        let (channel, tx) = Channel::balance_channel::<Member>(64);
        let task = tokio::spawn(async move {
            let mut current = BTreeSet::new();
            let mut next = if initial.is_empty() {
                self.next(&current).await
            } else {
                initial
            };
            loop {
                if !self.apply(&tx, &current, &next).await {
                    return;
                }
                current = next;
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(self.discovery.refresh) => {}
                }
                next = self.next(&current).await;
            }
        });
        (channel, task)
    }

    /// Sends the changes from `current` to `next`; false once the channel is gone.
    async fn apply(
        &self,
        tx: &tokio::sync::mpsc::Sender<Change<Member, Endpoint>>,
        current: &BTreeSet<Member>,
        next: &BTreeSet<Member>,
    ) -> bool {
        if current == next {
            return true;
        }
        let added: Vec<String> = next.difference(current).map(|m| self.uri_of(*m)).collect();
        let removed: Vec<String> = current.difference(next).map(|m| self.uri_of(*m)).collect();
        tracing::info!(addr = %self.addr, ?added, ?removed, "broker addresses changed");
        for m in next.difference(current) {
            let Some(endpoint) = (self.endpoint)(&self.uri_of(*m)) else {
                continue;
            };
            if tx.send(Change::Insert(*m, endpoint)).await.is_err() {
                return false;
            }
        }
        for m in current.difference(next) {
            if tx.send(Change::Remove(*m)).await.is_err() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_with_a_host_name_are_balanced_and_ip_literals_are_not() {
        let cases: &[(&str, Target)] = &[
            ("http://127.0.0.1:7440", Target::Single),
            ("http://[::1]:7440", Target::Single),
            (
                "http://broker:7440",
                Target::Name {
                    scheme: "http".into(),
                    host: "broker".into(),
                    port: 7440,
                },
            ),
            (
                "http://localhost",
                Target::Name {
                    scheme: "http".into(),
                    host: "localhost".into(),
                    port: 80,
                },
            ),
            ("broker:7440", Target::Single),
        ];
        for (addr, want) in cases {
            let uri: Uri = addr.parse().unwrap();
            assert_eq!(&target(&uri), want, "{addr}");
        }
    }

    #[test]
    fn the_set_follows_resolution_and_probes() {
        let one = a("10.0.0.1:7440");
        let two = a("10.0.0.2:7440");
        let set = |ms: &[Member]| ms.iter().copied().collect::<BTreeSet<_>>();
        let up = |xs: &[SocketAddr]| xs.iter().copied().collect::<BTreeSet<_>>();
        let both = [one, two];
        struct Case<'a> {
            what: &'a str,
            current: BTreeSet<Member>,
            resolved: Option<&'a [SocketAddr]>,
            reachable: BTreeSet<SocketAddr>,
            want: BTreeSet<Member>,
        }
        let cases = [
            Case {
                what: "nothing yet, name unresolved: the name itself",
                current: set(&[]),
                resolved: None,
                reachable: up(&[]),
                want: set(&[Member::Name]),
            },
            Case {
                what: "nothing yet, resolves to nothing: the name itself",
                current: set(&[]),
                resolved: Some(&[]),
                reachable: up(&[]),
                want: set(&[Member::Name]),
            },
            Case {
                what: "resolution fails later: keep what works",
                current: set(&[Member::Addr(one), Member::Addr(two)]),
                resolved: None,
                reachable: up(&[]),
                want: set(&[Member::Addr(one), Member::Addr(two)]),
            },
            Case {
                what: "the name starts resolving: its address replaces the name",
                current: set(&[Member::Name]),
                resolved: Some(&[one]),
                reachable: up(&[]),
                want: set(&[Member::Addr(one)]),
            },
            Case {
                what: "one address is used unprobed",
                current: set(&[Member::Addr(two)]),
                resolved: Some(&[one]),
                reachable: up(&[]),
                want: set(&[Member::Addr(one)]),
            },
            Case {
                what: "scaled out: both",
                current: set(&[Member::Addr(one)]),
                resolved: Some(&both),
                reachable: up(&both),
                want: set(&[Member::Addr(one), Member::Addr(two)]),
            },
            Case {
                what: "one broker down: only the live one",
                current: set(&[Member::Addr(one), Member::Addr(two)]),
                resolved: Some(&both),
                reachable: up(&[two]),
                want: set(&[Member::Addr(two)]),
            },
            Case {
                what: "every broker down: all of them, to fail with their errors",
                current: set(&[Member::Addr(two)]),
                resolved: Some(&both),
                reachable: up(&[]),
                want: set(&[Member::Addr(one), Member::Addr(two)]),
            },
        ];
        for c in cases {
            assert_eq!(
                desired(&c.current, c.resolved, &c.reachable),
                c.want,
                "{}",
                c.what
            );
        }
    }

    #[tokio::test]
    async fn probes_tell_listening_addresses_from_closed_ones() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = crate::ports::free_loopback_addr().unwrap();
        let up = probe(&[open, closed], Duration::from_secs(1)).await;
        assert_eq!(up, BTreeSet::from([open]));
    }

    #[tokio::test]
    async fn the_refresh_follows_the_resolver_and_stops_with_the_channel() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = crate::ports::free_loopback_addr().unwrap();
        let answers = Arc::new(std::sync::Mutex::new(vec![open, closed]));
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (answers2, calls2) = (answers.clone(), calls.clone());
        let resolver: Resolver = Arc::new(move |_host: &str, _port: u16| {
            calls2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let addrs = answers2.lock().unwrap().clone();
            Box::pin(async move { Ok(addrs) })
        });
        let balanced = Balanced {
            addr: "http://brokers:7440".into(),
            scheme: "http".into(),
            host: "brokers".into(),
            port: 7440,
            discovery: Discovery {
                resolver,
                refresh: Duration::from_millis(20),
                probe_timeout: Duration::from_millis(200),
            },
            endpoint: Arc::new(|uri: &str| Channel::from_shared(uri.to_string()).ok()),
        };
        // The refresh decides from the resolver's answer and the probes.
        let next = balanced.next(&BTreeSet::new()).await;
        assert_eq!(next, BTreeSet::from([Member::Addr(open)]));
        *answers.lock().unwrap() = vec![];
        assert_eq!(
            balanced.next(&next).await,
            next,
            "an empty answer keeps the set"
        );

        let (channel, task) = balanced.start(BTreeSet::new());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while calls.load(std::sync::atomic::Ordering::SeqCst) < 5 {
            assert!(tokio::time::Instant::now() < deadline, "no refreshes");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The task ends once the channel is gone.
        drop(channel);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the refresh task ends when the channel is dropped")
            .unwrap();
    }
}
