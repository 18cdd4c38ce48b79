//! Job, CronJob and DaemonSet validation rules and update immutability, as tables over
//! manifests edited one rule at a time.

use bosun_api::Object;
use bosun_api::codec::decode_manifests;
use bosun_api::validation::{validate_create, validate_update};

fn obj(text: &str) -> Object {
    let m = decode_manifests("t", text).unwrap_or_else(|e| panic!("{e}"));
    m[0].object.clone()
}

fn rejected(text: &str, want: &str) {
    let got: Vec<String> = match decode_manifests("t", text) {
        Ok(_) => vec![],
        Err(e) => e
            .diagnostics
            .iter()
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect(),
    };
    assert!(
        got.iter().any(|g| g.starts_with(want)),
        "want {want}\ngot {got:#?}\n{text}"
    );
}

const JOB: &str = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n";
const CJ: &str = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers: [{name: c, image: busybox}]\n";
const DS: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n      containers: [{name: c, image: busybox}]\n";

fn with(base: &str, extra: &str) -> String {
    base.replacen("spec:\n", &format!("spec:\n{extra}"), 1)
}

#[test]
fn job_rules_report_kubernetes_messages() {
    let table = [
        (
            "  parallelism: -1\n",
            "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "  completionMode: Sometimes\n",
            "spec.completionMode: Unsupported value: \"Sometimes\"",
        ),
        (
            "  completionMode: Indexed\n  parallelism: 2\n",
            "spec.completions: Required value",
        ),
        (
            "  backoffLimitPerIndex: 1\n",
            "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode",
        ),
        (
            "  maxFailedIndexes: 1\n  completionMode: Indexed\n  completions: 3\n",
            "spec.backoffLimitPerIndex: Required value",
        ),
        ("  manualSelector: true\n", "spec.selector: Required value"),
        (
            "  manualSelector: true\n  selector: {matchLabels: {a: b}}\n",
            "spec.template.metadata.labels: Invalid value",
        ),
        (
            "  podFailurePolicy: {rules: [{action: FailJob}]}\n",
            "spec.podFailurePolicy.rules[0]: Invalid value: \"\": specifying one of OnExitCodes and OnPodConditions is required",
        ),
        (
            "  podFailurePolicy: {rules: [{action: FailJob, onExitCodes: {operator: In, values: [0, 1]}}]}\n",
            "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0",
        ),
        (
            "  podFailurePolicy: {rules: [{action: FailJob, onExitCodes: {operator: NotIn, values: [3, 2]}}]}\n",
            "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Invalid value: 2: must be ordered",
        ),
        (
            "  podFailurePolicy: {rules: [{action: FailIndex, onExitCodes: {operator: In, values: [1]}}]}\n",
            "spec.podFailurePolicy.rules[0].action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set",
        ),
        (
            "  podReplacementPolicy: TerminatingOrFailed\n  podFailurePolicy: {rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]}\n",
            "spec.podReplacementPolicy: Unsupported value: \"TerminatingOrFailed\": supported values: \"Failed\"",
        ),
        (
            "  successPolicy: {rules: [{succeededCount: 1}]}\n",
            "spec.successPolicy: Invalid value: \"\": requires indexed completion mode",
        ),
        (
            "  completionMode: Indexed\n  completions: 3\n  successPolicy: {rules: [{succeededIndexes: \"2-1\"}]}\n",
            "spec.successPolicy.rules[0].succeededIndexes: Invalid value",
        ),
        (
            "  managedBy: not-a-path\n",
            "spec.managedBy: Invalid value: \"not-a-path\"",
        ),
        (
            "  podBackoff: {initialSeconds: 0}\n",
            "spec.podBackoff.initialSeconds: Invalid value: 0: must be greater than 0",
        ),
        (
            "  podBackoff: {initialSeconds: 20, maxSeconds: 10}\n",
            "spec.podBackoff.maxSeconds: Invalid value: 10",
        ),
        (
            "  podBackoff: {factor: 0}\n",
            "spec.podBackoff.factor: Invalid value: 0",
        ),
        (
            "  dependsOn: [j]\n",
            "spec.dependsOn[0]: Invalid value: \"j\": a Job cannot depend on itself",
        ),
        (
            "  dependsOn: [a, a]\n",
            "spec.dependsOn[1]: Duplicate value: \"a\"",
        ),
        (
            "  dependsOn: [Bad_Name]\n",
            "spec.dependsOn[0]: Invalid value: \"Bad_Name\"",
        ),
    ];
    assert!(validate_create(&obj(JOB)).is_ok());
    for (extra, want) in table {
        rejected(&with(JOB, extra), want);
    }
    rejected(&JOB.replace("restartPolicy: Never", "restartPolicy: OnFailure").replacen("spec:\n", "spec:\n  podFailurePolicy: {rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]}\n", 1), "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported");
    rejected(
        &JOB.replace("name: j", &format!("name: {}", "j".repeat(64))),
        "metadata.name: Invalid value",
    );
}

#[test]
fn cron_job_time_zones_and_schedules_are_refused_with_kubernetes_reasons() {
    let table = [
        (
            "unknown zone",
            with(CJ, "  timeZone: Mars/Olympus\n"),
            "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
        ),
        (
            "empty zone",
            with(CJ, "  timeZone: \"\"\n"),
            "spec.timeZone: Invalid value: \"\": timeZone must be nil or non-empty string",
        ),
        (
            "Local",
            with(CJ, "  timeZone: Local\n"),
            "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ),
        (
            "a path part longer than 14",
            with(CJ, "  timeZone: America/Argentina_Buenos_Aires\n"),
            "spec.timeZone: Invalid value: \"America/Argentina_Buenos_Aires\": unknown time zone America/Argentina_Buenos_Aires",
        ),
        (
            "a part starting with a dash",
            with(CJ, "  timeZone: Europe/-Paris\n"),
            "spec.timeZone: Invalid value: \"Europe/-Paris\": unknown time zone Europe/-Paris",
        ),
        (
            "TZ in the schedule",
            CJ.replace("*/5 * * * *", "TZ=UTC */5 * * * *"),
            "spec.schedule: Invalid value: \"TZ=UTC */5 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ),
        (
            "CRON_TZ in the schedule",
            CJ.replace("*/5 * * * *", "CRON_TZ=UTC */5 * * * *"),
            "spec.schedule: Invalid value: \"CRON_TZ=UTC */5 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ),
        (
            "four fields",
            CJ.replace("*/5 * * * *", "*/5 * * *"),
            "spec.schedule: Invalid value: \"*/5 * * *\": expected exactly 5 fields, found 4",
        ),
    ];
    for (name, text, want) in table {
        eprintln!("row: {name}");
        rejected(&text, want);
    }
    for zone in [
        "UTC",
        "Etc/GMT+5",
        "America/New_York",
        "Australia/Lord_Howe",
    ] {
        assert!(
            validate_create(&obj(&with(CJ, &format!("  timeZone: {zone}\n")))).is_ok(),
            "{zone}"
        );
    }
}

#[test]
fn cron_job_catch_up_policies_are_checked() {
    let table = [
        (
            "unknown policy",
            "  catchUp: {policy: Every}\n",
            "spec.catchUp.policy: Unsupported value: \"Every\": supported values: \"Latest\", \"None\", \"All\"",
        ),
        (
            "lowercase policy",
            "  catchUp: {policy: all}\n",
            "spec.catchUp.policy: Unsupported value: \"all\"",
        ),
        (
            "maxRuns zero",
            "  catchUp: {policy: All, maxRuns: 0}\n",
            "spec.catchUp.maxRuns: Invalid value: 0: must be greater than or equal to 1",
        ),
        (
            "maxRuns negative",
            "  catchUp: {policy: All, maxRuns: -3}\n",
            "spec.catchUp.maxRuns: Invalid value: -3: must be greater than or equal to 1",
        ),
        (
            "maxRuns with Latest",
            "  catchUp: {policy: Latest, maxRuns: 5}\n",
            "spec.catchUp.maxRuns: Forbidden: may only be set when spec.catchUp.policy is All",
        ),
        (
            "maxRuns without a policy",
            "  catchUp: {maxRuns: 5}\n",
            "spec.catchUp.maxRuns: Forbidden: may only be set when spec.catchUp.policy is All",
        ),
    ];
    for (name, extra, want) in table {
        eprintln!("row: {name}");
        rejected(&with(CJ, extra), want);
    }
    for ok in [
        "  catchUp: {}\n",
        "  catchUp: {policy: Latest}\n",
        "  catchUp: {policy: None}\n",
        "  catchUp: {policy: All}\n",
        "  catchUp: {policy: All, maxRuns: 1}\n",
    ] {
        let o = obj(&with(CJ, ok));
        assert!(validate_create(&o).is_ok(), "{ok}");
    }
}

#[test]
fn cron_job_rules_report_kubernetes_messages() {
    assert!(validate_create(&obj(CJ)).is_ok());
    rejected(
        &CJ.replace("*/5 * * * *", "*/5 * * *"),
        "spec.schedule: Invalid value: \"*/5 * * *\": expected exactly 5 fields",
    );
    rejected(
        &CJ.replace("*/5 * * * *", "TZ=UTC */5 * * * *"),
        "spec.schedule: Invalid value",
    );
    rejected(
        &with(CJ, "  timeZone: Mars/Olympus\n"),
        "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone",
    );
    assert!(validate_create(&obj(&with(CJ, "  timeZone: Europe/Paris\n"))).is_ok());
    rejected(
        &with(CJ, "  startingDeadlineSeconds: -1\n"),
        "spec.startingDeadlineSeconds: Invalid value: -1",
    );
    rejected(
        &with(CJ, "  failedJobsHistoryLimit: -1\n"),
        "spec.failedJobsHistoryLimit: Invalid value: -1",
    );
    rejected(
        &with(CJ, "  concurrencyPolicy: Sometimes\n"),
        "spec.concurrencyPolicy: Unsupported value",
    );
    rejected(
        &CJ.replace(
            "    spec:\n      template",
            "    spec:\n      manualSelector: true\n      template",
        ),
        "spec.jobTemplate.spec.manualSelector: Unsupported value: \"true\"",
    );
    rejected(
        &CJ.replace(
            "    spec:\n      template",
            "    spec:\n      selector: {matchLabels: {a: b}}\n      template",
        ),
        "spec.jobTemplate.spec.selector: Invalid value",
    );
    rejected(
        &CJ.replace("name: c}", &format!("name: {}}}", "c".repeat(53))),
        "metadata.name: Invalid value",
    );
}

#[test]
fn daemon_set_rules_report_kubernetes_messages() {
    assert!(validate_create(&obj(DS)).is_ok());
    rejected(
        &DS.replace("  selector: {matchLabels: {app: d}}\n", ""),
        "spec.selector: Required value",
    );
    rejected(
        &DS.replace("{matchLabels: {app: d}}", "{matchLabels: {app: e}}"),
        "spec.template.metadata.labels: Invalid value",
    );
    rejected(
        &DS.replace(
            "      containers",
            "      restartPolicy: Never\n      containers",
        ),
        "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    );
    rejected(
        &DS.replace(
            "      containers",
            "      activeDeadlineSeconds: 5\n      containers",
        ),
        "spec.template.spec.activeDeadlineSeconds: Forbidden",
    );
    rejected(
        &with(
            DS,
            "  updateStrategy: {rollingUpdate: {maxUnavailable: 0}}\n",
        ),
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0 when maxSurge is 0",
    );
    rejected(
        &with(
            DS,
            "  updateStrategy: {rollingUpdate: {maxUnavailable: 1, maxSurge: 1}}\n",
        ),
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: \"1\": may not be set when maxUnavailable is non-zero",
    );
    rejected(
        &with(
            DS,
            "  updateStrategy: {rollingUpdate: {maxUnavailable: \"150%\"}}\n",
        ),
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\"",
    );
    assert!(
        validate_create(&obj(&with(
            DS,
            "  updateStrategy: {rollingUpdate: {maxUnavailable: 0, maxSurge: \"10%\"}}\n"
        )))
        .is_ok()
    );
}

#[test]
fn updates_keep_immutable_fields() {
    let job = obj(JOB);
    let changed_image = obj(&JOB.replace("image: busybox", "image: alpine"));
    let err = validate_update(&job, &changed_image).unwrap_err();
    assert_eq!(err[0].path, "spec.template");
    let more_parallel = obj(&with(JOB, "  completions: 1\n  parallelism: 3\n"));
    assert!(
        validate_update(&job, &more_parallel).is_ok(),
        "parallelism is mutable"
    );
    let suspended = obj(&with(JOB, "  suspend: true\n"));
    let suspended_selector = obj(&with(
        &JOB.replace(
            "      restartPolicy",
            "      nodeSelector: {disk: ssd}\n      restartPolicy",
        ),
        "  suspend: true\n",
    ));
    assert!(
        validate_update(&suspended, &suspended_selector).is_ok(),
        "scheduling directives change while suspended"
    );
    let renamed = obj(&JOB.replace("name: j", "name: k"));
    assert_eq!(
        validate_update(&job, &renamed).unwrap_err()[0].path,
        "metadata.name"
    );

    let ds = obj(DS);
    let ds2 = obj(&DS.replace("app: d", "app: e"));
    assert!(
        validate_update(&ds, &ds2)
            .unwrap_err()
            .iter()
            .any(|e| e.path == "spec.selector")
    );

    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox}]\n";
    let p1 = obj(pod);
    assert!(
        validate_update(&p1, &obj(&pod.replace("busybox", "alpine"))).is_ok(),
        "images may change"
    );
    assert!(validate_update(&p1, &obj(&with(pod, "  activeDeadlineSeconds: 10\n"))).is_ok());
    assert!(
        validate_update(
            &p1,
            &obj(&with(pod, "  tolerations: [{operator: Exists}]\n"))
        )
        .is_ok()
    );
    assert!(validate_update(&p1, &obj(&with(pod, "  nodeName: n1\n"))).is_err());
}
