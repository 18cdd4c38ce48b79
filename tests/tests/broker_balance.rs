//! Several brokers behind one name: a client whose broker address is a host name resolves it
//! to every broker's address and balances over them, so a broker going away does not stop
//! it. Two real `bosun-broker` processes on one etcd; the name resolves (through an injected
//! resolver: both brokers listen on 127.0.0.1, on different ports) to both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bosun_runtime::balance::{Discovery, Resolver};
use bosun_runtime::client::{self, Broker as Client, Selector, WatchEvent};
use bosun_tests::{Bosun, Broker, Etcd, free_addr, pod, v1, wait_for};

/// `brokers.test` (any port) resolves to `addrs`.
fn discovery(addrs: Vec<SocketAddr>) -> Discovery {
    let resolver: Resolver = Arc::new(move |host: &str, _port: u16| {
        let answer = if host == "brokers.test" {
            Ok(addrs.clone())
        } else {
            Err(std::io::Error::other(format!("unknown host {host}")))
        };
        Box::pin(async move { answer })
    });
    Discovery {
        resolver,
        refresh: Duration::from_millis(200),
        probe_timeout: Duration::from_millis(500),
    }
}

/// The Creates the broker whose metrics are at `metrics` answered OK.
async fn creates_served(metrics: SocketAddr) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(metrics).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bosun\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body.lines()
        .filter(|l| {
            l.starts_with("bosun_broker_requests_total{")
                && l.contains(r#"method="Create""#)
                && l.contains(r#"code="Ok""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_client_balances_over_every_broker_of_a_name_and_survives_one_dying() {
    let etcd = Etcd::start().await;
    let (metrics_a, metrics_b) = (free_addr(), free_addr());
    let mut a =
        Broker::spawn_process_with(&etcd, &["--metrics-listen", &metrics_a.to_string()], &[]).await;
    let b =
        Broker::spawn_process_with(&etcd, &["--metrics-listen", &metrics_b.to_string()], &[]).await;
    let found = discovery(vec![a.addr(), b.addr()]);

    // A lazy client, as every service has, and an eager one, as the CLI has.
    let lazy = Client::new(client::connect_lazy_with("http://brokers.test:7440", &found).unwrap());
    let eager = Client::new(
        client::connect_with("http://brokers.test:7440", &found)
            .await
            .expect("the name resolves to two live brokers"),
    );

    // Both brokers serve calls made through the one name.
    for i in 0..20 {
        let via = if i % 2 == 0 { &lazy } else { &eager };
        via.create(pod("default", &format!("before-{i}")))
            .await
            .unwrap_or_else(|e| panic!("create before-{i}: {e}"));
    }
    let (served_a, served_b) = (
        creates_served(metrics_a).await,
        creates_served(metrics_b).await,
    );
    assert_eq!(served_a + served_b, 20.0, "a: {served_a}, b: {served_b}");
    assert!(
        served_a > 0.0 && served_b > 0.0,
        "calls were not balanced: a served {served_a}, b {served_b}"
    );
    let before = lazy
        .list(v1::Kind::Pod, &Selector::all())
        .await
        .unwrap()
        .revision;

    // Kill one broker. Calls may fail until the next refresh (200 ms here) finds it gone;
    // from then on every call goes to the survivor: ten creates in a row succeed.
    a.stop().await;
    let killed = std::time::Instant::now();
    for (name, via) in [("lazy", &lazy), ("eager", &eager)] {
        let n = std::sync::atomic::AtomicUsize::new(0);
        wait_for(
            &format!("the {name} client to make 10 creates in a row through the survivor"),
            Duration::from_secs(20),
            || async {
                for _ in 0..10 {
                    let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    via.create(pod("default", &format!("after-{name}-{i}")))
                        .await
                        .map_err(|e| format!("after-{name}-{i}: {e}"))?;
                }
                Ok::<_, String>(())
            },
        )
        .await;
    }
    eprintln!(
        "both clients write through the survivor {:?} after the kill",
        killed.elapsed()
    );

    // A watch opened through the name after the kill sees what was written after it.
    let mut watch = lazy
        .watch(v1::Kind::Pod, &Selector::namespace("default"), before)
        .await
        .expect("a watch through the surviving broker");
    let mut seen = 0;
    while seen < 20 {
        let ev = tokio::time::timeout(Duration::from_secs(20), watch.next())
            .await
            .expect("watch events within 20 s")
            .expect("the watch stays up")
            .expect("the watch is not ended");
        if let WatchEvent::Added(_) = ev {
            seen += 1;
        }
    }
    drop(b);
}

/// `bosun health URL`, the compose stack's health check: exit 0 while a service's metrics
/// endpoint answers, 1 with the reason once it does not.
#[tokio::test]
async fn bosun_health_probes_a_services_metrics_endpoint() {
    let etcd = Etcd::start().await;
    let metrics = free_addr();
    let mut broker =
        Broker::spawn_process_with(&etcd, &["--metrics-listen", &metrics.to_string()], &[]).await;
    let url = format!("http://{metrics}/metrics");
    let bosun = Bosun::new(&broker.url());
    let up = bosun.run(&["health", &url]).await;
    assert_eq!((up.code, up.stdout.as_str()), (0, "ok\n"), "{}", up.stderr);
    broker.stop().await;
    let down = bosun.run(&["health", &url, "--timeout", "1s"]).await;
    assert_eq!(down.code, 1, "{}", down.stdout);
    assert!(down.stderr.contains("is not healthy"), "{}", down.stderr);
}
