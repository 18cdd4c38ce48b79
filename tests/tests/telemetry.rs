//! One trace from the command line through the plane, checked with an in-process OTLP
//! receiver:
//!
//! - the real `bosun` binary and the real `bosun-broker` binary: the broker's handler span is
//!   a descendant of the CLI's span in the same trace, each under its own service.name;
//! - `bosun apply` of a Job against in-process services (broker, Job controller, scheduler,
//!   node agent, exporting through this test process's own subscriber): the Job's create,
//!   its reconcile, the pod's create, the pod's scheduling and bind and the node agent's
//!   container start all hang under the CLI's span, carried from object to object by the
//!   `bosun.dev/traceparent` annotation;
//! - a CronJob's fire (its controller's clock moved to the slot) starts a trace of its own,
//!   linked to the reconcile that decided it: the Job's create, its reconcile, its pod's
//!   create, bind and container start all hang under the `fire` span.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bosun_tests::{Bosun, Broker, Etcd, Plane, manifests_dir, wait_for};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// One exported span.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    /// The string attributes (`target`, and the span's own fields such as `kind`).
    attributes: BTreeMap<String, String>,
    /// The spans it links to (not its parent): `(trace_id, span_id)`.
    links: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Span {
    fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

/// An OTLP/gRPC trace receiver that keeps every span.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("receiver lock");
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push(Span {
                        service: service.clone(),
                        name: s.name,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent_span_id: s.parent_span_id,
                        attributes: s
                            .attributes
                            .into_iter()
                            .filter_map(|kv| match kv.value.and_then(|v| v.value) {
                                Some(Value::StringValue(v)) => Some((kv.key, v)),
                                _ => None,
                            })
                            .collect(),
                        links: s
                            .links
                            .into_iter()
                            .map(|l| (l.trace_id, l.span_id))
                            .collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves on `127.0.0.1:0`; returns its `http://` endpoint.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(self.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("receiver lock").clone()
    }
}

/// Whether `span` descends from `ancestor` through the parent links among `all`.
fn descends_from(span: &Span, ancestor: &Span, all: &[Span]) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..all.len() {
        if parent.is_empty() {
            return false;
        }
        if parent == ancestor.span_id {
            return true;
        }
        match all.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

/// Waits (10 s at most) until the CLI's root span for `command` and a broker span named
/// `handler` in its trace have both arrived; returns them.
async fn cli_and_broker_spans(receiver: &Receiver, handler: &str) -> (Span, Span, Vec<Span>) {
    let what = format!("a CLI span with a broker {handler:?} span in its trace");
    wait_for(&what, Duration::from_secs(10), || async {
        let all = receiver.spans();
        let found = all
            .iter()
            .filter(|s| s.service == "bosun-cli" && s.parent_span_id.is_empty())
            .find_map(|cli| {
                all.iter()
                    .find(|s| {
                        s.service == "bosun-broker"
                            && s.name == handler
                            && s.trace_id == cli.trace_id
                    })
                    .map(|b| (cli.clone(), b.clone()))
            });
        match found {
            Some((cli, broker)) => Ok((cli, broker, all)),
            None => Err(format!("{all:#?}")),
        }
    })
    .await
}

#[tokio::test]
async fn the_cli_and_broker_spans_share_one_trace_with_the_broker_span_under_the_cli_span() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let etcd = Etcd::start().await;
    let envs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let broker = Broker::spawn_process_with(&etcd, &[], &envs).await;
    let mut bosun = Bosun::new(&broker.url()).in_dir(manifests_dir());
    for (k, v) in envs {
        bosun = bosun.env(k, v);
    }

    let out = bosun.run(&["get", "pods"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let (cli, list, all) = cli_and_broker_spans(&receiver, "list").await;
    assert_eq!(cli.name, "bosun");
    assert_eq!(cli.trace_id, list.trace_id);
    assert!(
        descends_from(&list, &cli, &all),
        "the broker's list span descends from the CLI span: {all:#?}"
    );

    let out = bosun.run(&["apply", "-f", "examples/job-pi.yaml"]).await;
    assert_eq!(out.code, 0, "{out:#?}");
    let (cli2, create, all) = cli_and_broker_spans(&receiver, "create").await;
    assert_ne!(cli2.trace_id, cli.trace_id, "a new command, a new trace");
    assert!(descends_from(&create, &cli2, &all), "{all:#?}");
}

/// The in-process services' `service.name` (they share this test process's subscriber, so
/// their spans are told apart by `target`, the module that made them).
const PLANE_SERVICE: &str = "bosun-plane";

/// One link of a Job's life: which span, made where, says what.
struct Link {
    what: &'static str,
    matches: fn(&Span) -> bool,
}

fn in_plane(s: &Span, crate_name: &str) -> bool {
    s.service == PLANE_SERVICE && s.attr("target").starts_with(crate_name)
}

/// The spans a Job's trace must hold, from `bosun apply` to the node agent.
const JOB_LIFE: [Link; 7] = [
    Link {
        what: "the broker's create of the Job",
        matches: |s| in_plane(s, "bosun_broker") && s.name == "create" && s.attr("kind") == "Job",
    },
    Link {
        what: "the Job controller's reconcile",
        matches: |s| {
            in_plane(s, "bosun_runtime") && s.name == "reconcile" && s.attr("controller") == "job"
        },
    },
    Link {
        what: "the broker's create of a pod",
        matches: |s| in_plane(s, "bosun_broker") && s.name == "create" && s.attr("kind") == "Pod",
    },
    Link {
        what: "the scheduler's reconcile",
        matches: |s| {
            in_plane(s, "bosun_runtime")
                && s.name == "reconcile"
                && s.attr("controller") == "scheduler"
        },
    },
    Link {
        what: "the broker's bind",
        matches: |s| in_plane(s, "bosun_broker") && s.name == "bind",
    },
    Link {
        what: "the node agent's container start",
        matches: |s| in_plane(s, "bosun_node_agent") && s.name == "start_container",
    },
    Link {
        what: "the node agent's pod status write",
        matches: |s| in_plane(s, "bosun_node_agent") && s.name == "write_status",
    },
];

/// The node agent's span of one pod, the parent of its container starts: it closes (and is
/// exported) only when the agent's pod worker stops.
const POD_SPAN: Link = Link {
    what: "the node agent's pod span",
    matches: |s| in_plane(s, "bosun_node_agent") && s.name == "pod",
};

/// A trace's spans, one line each (service, target, name), for failure messages.
fn describe_trace(trace: &[Span]) -> String {
    let mut lines: Vec<String> = trace
        .iter()
        .map(|s| format!("{} {} {}", s.service, s.attr("target"), s.name))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// The root of a trace that starts at the CLI: its `bosun` span.
const CLI_ROOT: Link = Link {
    what: "CLI trace",
    matches: |s| s.service == "bosun-cli" && s.name == "bosun" && s.parent_span_id.is_empty(),
};

/// Waits (30 s at most) until some trace rooted at a span `root` matches holds a span for
/// each of `links`; returns that root and the trace's spans.
async fn wait_for_trace(receiver: &Receiver, root: &Link, links: &[Link]) -> (Span, Vec<Span>) {
    let what = format!("a {} holding every span looked for", root.what);
    wait_for(&what, Duration::from_secs(30), || async {
        let all = receiver.spans();
        let roots = all
            .iter()
            .filter(|s| s.parent_span_id.is_empty() && (root.matches)(s));
        let mut closest = format!("no {}", root.what);
        for root in roots {
            let trace: Vec<Span> = all
                .iter()
                .filter(|s| s.trace_id == root.trace_id)
                .cloned()
                .collect();
            let missing: Vec<&str> = links
                .iter()
                .filter(|l| !trace.iter().any(|s| (l.matches)(s)))
                .map(|l| l.what)
                .collect();
            if missing.is_empty() {
                return Ok((root.clone(), trace));
            }
            closest = format!(
                "missing {missing:?} in the trace of\n{}",
                describe_trace(&trace)
            );
        }
        Err(closest)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_job_from_bosun_apply_through_its_controllers_to_its_node() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    // The in-process services export through this process's global subscriber.
    let telemetry = bosun_runtime::telemetry::init_with_endpoint(PLANE_SERVICE, Some(&endpoint))
        .expect("telemetry");
    assert!(
        telemetry.is_exporting(),
        "another subscriber was installed first in this test process"
    );

    let plane = Plane::builder("trace-job")
        .scheduler()
        .job_controller()
        .start()
        .await;
    let agent = plane.start_agent(plane.agent_config("node-1"));

    let bosun = plane
        .bosun()
        .clone()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let job = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: traced
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["true"]
"#;
    let out = bosun.run_with_stdin(&["apply", "-f", "-"], Some(job)).await;
    assert_eq!(out.code, 0, "{out:#?}");

    let (cli, _) = wait_for_trace(&receiver, &CLI_ROOT, &JOB_LIFE).await;

    // The node agent's pod span (the parent of its container start) closes when its worker
    // stops: stop the agent, then every link must descend from the CLI's span.
    agent.stop().await;
    let (root, trace) = wait_for_trace(&receiver, &CLI_ROOT, &[POD_SPAN]).await;
    assert_eq!(root.span_id, cli.span_id, "one `bosun apply`, one trace");
    for link in JOB_LIFE.iter().chain([&POD_SPAN]) {
        let span = trace
            .iter()
            .find(|s| (link.matches)(s))
            .unwrap_or_else(|| panic!("{} is in the trace", link.what));
        assert!(
            descends_from(span, &cli, &trace),
            "{} descends from the CLI's span:\n{}",
            link.what,
            describe_trace(&trace)
        );
    }
    drop(plane);
    telemetry.shutdown();
}

/// The trace the CronJob of the test below was "applied" in, days ago: its
/// `bosun.dev/traceparent` annotation, written in the manifest (the broker stamps a create
/// only when the request carries a trace, and this one does not).
const APPLY_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// A CronJob's fire, the root of the trace of one run.
const FIRE_ROOT: Link = Link {
    what: "CronJob fire trace",
    matches: |s| in_plane(s, "bosun_cronjob_controller") && s.name == "fire",
};

/// Lower-case hex, as a `traceparent` spells ids.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fire_of_a_cronjob_is_one_trace_from_the_fire_through_its_job_to_its_node() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let telemetry = bosun_runtime::telemetry::init_with_endpoint(PLANE_SERVICE, Some(&endpoint))
        .expect("telemetry");
    assert!(
        telemetry.is_exporting(),
        "another subscriber was installed first in this test process"
    );

    let clock = bosun_cronjob_controller::Clock::default();
    let plane = Plane::builder("trace-cronjob")
        .scheduler()
        .job_controller()
        .cronjob_controller_with({
            let clock = clock.clone();
            move |c| c.clock = clock
        })
        .start()
        .await;
    let agent = plane.start_agent(plane.agent_config("node-1"));
    // Not in a minute's last 10 s: the controller's own timer (woken 250 ms ahead of a real
    // slot) must not fire the next real minute before the jump below.
    wait_for("a minute's first 50 s", Duration::from_secs(15), || async {
        use chrono::Timelike as _;
        (chrono::Utc::now().second() < 50).then_some(())
    })
    .await;

    plane
        .apply(&format!(
            r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
  annotations:
    bosun.dev/traceparent: 00-{APPLY_TRACE_ID}-b7ad6b7169203331-01
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox
            command: ["true"]
"#
        ))
        .await;
    // The next whole minute, at least 5 s after the CronJob was created (so it is a slot of
    // this CronJob), reached at once: the controller's clock jumps to just before it.
    let soonest = (clock.now() + chrono::Duration::seconds(5)).timestamp();
    let slot = chrono::DateTime::from_timestamp((soonest / 60 + 1) * 60, 0).expect("a minute");
    clock.jump_to(slot - chrono::Duration::milliseconds(300));

    let (fire, _) = wait_for_trace(&receiver, &FIRE_ROOT, &JOB_LIFE).await;
    assert_eq!(fire.attr("cronjob"), "default/tick");
    assert_eq!(
        fire.attr("scheduled"),
        slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(fire.attr("job"), format!("tick-{}", slot.timestamp() / 60));
    assert_ne!(
        hex(&fire.trace_id),
        APPLY_TRACE_ID,
        "a fire starts a trace, it does not continue the CronJob's"
    );

    // Every link descends from the fire span (the pod span closes when the agent stops).
    agent.stop().await;
    let (root, trace) = wait_for_trace(&receiver, &FIRE_ROOT, &[POD_SPAN]).await;
    assert_eq!(root.span_id, fire.span_id, "one fire, one trace");
    for link in JOB_LIFE.iter().chain([&POD_SPAN]) {
        let span = trace
            .iter()
            .find(|s| (link.matches)(s))
            .unwrap_or_else(|| panic!("{} is in the trace", link.what));
        assert!(
            descends_from(span, &fire, &trace),
            "{} descends from the fire span:\n{}",
            link.what,
            describe_trace(&trace)
        );
    }

    // The fire links back to the CronJob's reconcile that decided it, in the CronJob's trace.
    let reconcile = wait_for(
        "the reconcile the fire span links to",
        Duration::from_secs(30),
        || async {
            let all = receiver.spans();
            fire.links
                .iter()
                .find_map(|(trace_id, span_id)| {
                    all.iter()
                        .find(|s| &s.trace_id == trace_id && &s.span_id == span_id)
                        .cloned()
                })
                .ok_or_else(|| format!("links {:?}", fire.links))
        },
    )
    .await;
    assert_eq!(
        (reconcile.name.as_str(), reconcile.attr("controller")),
        ("reconcile", "cronjob")
    );
    assert_eq!(hex(&reconcile.trace_id), APPLY_TRACE_ID);
    drop(plane);
    telemetry.shutdown();
}
