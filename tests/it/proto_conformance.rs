//! Wire conformance of `acf-sdk/proto/` against Hatchet's own compiled descriptors, as shipped in the
//! official Python SDK (`hatchet_sdk.contracts`, dumped by `tests/python/dump_descriptors.py`).
//!
//! Both descriptor sets are flattened into "facts" (one per file, message, field, oneof, enum, enum
//! value, service and method, keyed by fully-qualified name), then compared in both directions.
//! Options, comments and `json_name` are not wire facts and are left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use acf_sdk::proto::FILE_DESCRIPTOR_SET;
use acf_tests::python::{PythonScript, script};
use base64::Engine as _;
use prost::Message as _;
use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet,
};

/// The SDK release whose descriptors define "wire-identical".
const HATCHET_SDK_VERSION: &str = "1.43.1";

/// Fully-qualified fact key → everything that must match about it.
type Facts = BTreeMap<String, String>;

fn ours() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("acf-sdk embeds a valid descriptor set")
}

/// Runs the Python dump and decodes Hatchet's descriptor set from it.
fn hatchet() -> FileDescriptorSet {
    let out = PythonScript::new(script("dump_descriptors.py")).run();
    out.assert_success();
    let dump: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|err| panic!("dump is not JSON ({err}): {}", out.stdout));
    assert_eq!(
        dump["hatchet_sdk_version"], HATCHET_SDK_VERSION,
        "the interop venv must hold hatchet-sdk=={HATCHET_SDK_VERSION} (scripts/ensure-venv)"
    );
    let encoded = dump["descriptor_set"]
        .as_str()
        .expect("descriptor_set is a string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("descriptor_set is base64");
    FileDescriptorSet::decode(bytes.as_slice()).expect("descriptor_set decodes")
}

/// Flattens every file of `set` except the well-known types (we import them; neither side declares them).
fn facts(set: &FileDescriptorSet) -> Facts {
    let mut facts = Facts::new();
    for file in set
        .file
        .iter()
        .filter(|f| !f.name().starts_with("google/protobuf/"))
    {
        let mut deps = file.dependency.clone();
        deps.sort();
        facts.insert(
            format!("file {}", file.name()),
            format!(
                "package={:?} syntax={:?} deps={deps:?}",
                file.package(),
                file.syntax()
            ),
        );
        let scope = match file.package() {
            "" => String::new(),
            package => format!(".{package}"),
        };
        for message in &file.message_type {
            message_facts(&mut facts, file.name(), &scope, message);
        }
        for enumeration in &file.enum_type {
            enum_facts(&mut facts, file.name(), &scope, enumeration);
        }
        for service in &file.service {
            let name = format!("{scope}.{}", service.name())
                .trim_start_matches('.')
                .to_owned();
            facts.insert(format!("service {name}"), format!("file={}", file.name()));
            for method in &service.method {
                facts.insert(
                    format!("rpc /{name}/{}", method.name()),
                    format!(
                        "input={} output={} client_streaming={} server_streaming={}",
                        method.input_type(),
                        method.output_type(),
                        method.client_streaming(),
                        method.server_streaming()
                    ),
                );
            }
        }
    }
    facts
}

fn message_facts(facts: &mut Facts, file: &str, scope: &str, message: &DescriptorProto) {
    let name = format!("{scope}.{}", message.name());
    let oneofs: Vec<&str> = message.oneof_decl.iter().map(|o| o.name()).collect();
    let reserved: Vec<(i32, i32)> = message
        .reserved_range
        .iter()
        .map(|r| (r.start(), r.end()))
        .collect();
    let map_entry = message.options.as_ref().is_some_and(|o| o.map_entry());
    facts.insert(
        format!("message {name}"),
        format!(
            "file={file} map_entry={map_entry} oneofs={oneofs:?} reserved={reserved:?} reserved_names={:?}",
            message.reserved_name
        ),
    );
    for field in &message.field {
        facts.insert(
            format!("field {name}.{}", field.name()),
            field_fact(message, field),
        );
    }
    for nested in &message.nested_type {
        message_facts(facts, file, &name, nested);
    }
    for enumeration in &message.enum_type {
        enum_facts(facts, file, &name, enumeration);
    }
}

fn field_fact(message: &DescriptorProto, field: &FieldDescriptorProto) -> String {
    let oneof = field.oneof_index.map(|index| {
        let name = usize::try_from(index)
            .ok()
            .and_then(|i| message.oneof_decl.get(i))
            .map_or("<out of range>", |o| o.name());
        format!("{index}:{name}")
    });
    format!(
        "number={} label={:?} type={:?} type_name={:?} proto3_optional={} oneof={oneof:?} extendee={:?} default={:?}",
        field.number(),
        field.label(),
        field.r#type(),
        field.type_name(),
        field.proto3_optional(),
        field.extendee(),
        field.default_value(),
    )
}

fn enum_facts(facts: &mut Facts, file: &str, scope: &str, enumeration: &EnumDescriptorProto) {
    let name = format!("{scope}.{}", enumeration.name());
    facts.insert(format!("enum {name}"), format!("file={file}"));
    for value in &enumeration.value {
        facts.insert(
            format!("enum_value {name}.{}", value.name()),
            value.number().to_string(),
        );
    }
}

/// Every disagreement between `hatchet` and `acf`, one readable entry each.
fn mismatches(hatchet: &Facts, acf: &Facts) -> Vec<String> {
    let mut found = Vec::new();
    for (key, theirs) in hatchet {
        match acf.get(key) {
            None => found.push(format!("missing in acf: {key}\n    hatchet: {theirs}")),
            Some(mine) if mine != theirs => {
                found.push(format!(
                    "differs: {key}\n    hatchet: {theirs}\n    acf:     {mine}"
                ));
            }
            Some(_) => {}
        }
    }
    for (key, mine) in acf {
        if !hatchet.contains_key(key) {
            found.push(format!(
                "extra in acf (Hatchet lacks it): {key}\n    acf: {mine}"
            ));
        }
    }
    found
}

fn report(found: &[String]) -> String {
    let mut text = format!("{} wire mismatch(es) with Hatchet:\n", found.len());
    for entry in found {
        let _ = writeln!(text, "  - {entry}");
    }
    text
}

#[test]
fn protos_are_wire_identical_to_the_python_sdk_descriptors() {
    let hatchet = facts(&hatchet());
    let acf = facts(&ours());
    for file in [
        "dispatcher.proto",
        "events.proto",
        "workflows.proto",
        "v1/dispatcher.proto",
        "v1/workflows.proto",
        "v1/shared/condition.proto",
        "v1/shared/trigger.proto",
    ] {
        assert!(
            hatchet.contains_key(&format!("file {file}")),
            "Python dump lacks {file}"
        );
    }
    let found = mismatches(&hatchet, &acf);
    assert!(found.is_empty(), "{}", report(&found));
    // Guard against a vacuous pass (e.g. both sides accidentally empty).
    let fields = acf.keys().filter(|k| k.starts_with("field ")).count();
    assert!(fields > 300, "only {fields} fields compared");
}

/// RPCs a worker or a trigger client calls (reference §2.1), plus those the engine must serve,
/// with their streaming shape `(client_streaming, server_streaming)`.
const RPCS_IN_USE: &[(&str, bool, bool)] = &[
    ("/Dispatcher/Register", false, false),
    ("/Dispatcher/ListenV2", false, true),
    ("/Dispatcher/Heartbeat", false, false),
    ("/Dispatcher/SubscribeToWorkflowEvents", false, true),
    ("/Dispatcher/SubscribeToWorkflowRuns", true, true),
    ("/Dispatcher/SendStepActionEvent", false, false),
    ("/Dispatcher/SendBatchActionEvent", false, false),
    ("/Dispatcher/Unsubscribe", false, false),
    ("/Dispatcher/RefreshTimeout", false, false),
    ("/Dispatcher/ReleaseSlot", false, false),
    ("/Dispatcher/UpsertWorkerLabels", false, false),
    ("/Dispatcher/GetVersion", false, false),
    ("/EventsService/Push", false, false),
    ("/EventsService/BulkPush", false, false),
    ("/EventsService/PutLog", false, false),
    ("/EventsService/PutStreamEvent", false, false),
    ("/WorkflowService/TriggerWorkflow", false, false),
    ("/WorkflowService/BulkTriggerWorkflow", false, false),
    ("/WorkflowService/ScheduleWorkflow", false, false),
    ("/WorkflowService/PutRateLimit", false, false),
    ("/v1.AdminService/PutWorkflow", false, false),
    ("/v1.AdminService/GetRunDetails", false, false),
    ("/v1.AdminService/TriggerWorkflowRun", false, false),
    ("/v1.AdminService/CancelTasks", false, false),
    ("/v1.V1Dispatcher/DurableTask", true, true),
    ("/v1.V1Dispatcher/RegisterDurableEvent", false, false),
    ("/v1.V1Dispatcher/ListenForDurableEvent", true, true),
];

#[test]
fn every_rpc_clients_use_is_declared_with_its_streaming_shape() {
    let pool =
        DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("embedded descriptors form a pool");
    for &(path, client_streaming, server_streaming) in RPCS_IN_USE {
        let (service, method) = path[1..].split_once('/').expect("path is /service/method");
        let service = pool
            .get_service_by_name(service)
            .unwrap_or_else(|| panic!("service of {path} is not declared"));
        let method = service
            .methods()
            .find(|m| m.name() == method)
            .unwrap_or_else(|| panic!("{path} is not declared"));
        assert_eq!(
            (method.is_client_streaming(), method.is_server_streaming()),
            (client_streaming, server_streaming),
            "{path}: streaming shape"
        );
    }
}

#[test]
fn generated_servers_serve_hatchets_grpc_paths() {
    use acf_sdk::proto::{dispatcher_server, events_service_server, v1, workflow_service_server};
    assert_eq!(dispatcher_server::SERVICE_NAME, "Dispatcher");
    assert_eq!(events_service_server::SERVICE_NAME, "EventsService");
    assert_eq!(workflow_service_server::SERVICE_NAME, "WorkflowService");
    assert_eq!(v1::admin_service_server::SERVICE_NAME, "v1.AdminService");
    assert_eq!(v1::v1_dispatcher_server::SERVICE_NAME, "v1.V1Dispatcher");
    // WorkflowService/TriggerWorkflow takes the v1 request: the package-less code must reach `v1`.
    let request = v1::TriggerWorkflowRequest {
        name: "w".into(),
        ..Default::default()
    };
    let bulk = acf_sdk::proto::BulkTriggerWorkflowRequest {
        workflows: vec![request],
    };
    assert_eq!(bulk.workflows[0].name, "w");
}

/// Applies `mutate` to a copy of our descriptors and returns what the comparison reports.
fn report_after(mutate: impl FnOnce(&mut FileDescriptorSet)) -> Vec<String> {
    let original = ours();
    let mut changed = original.clone();
    mutate(&mut changed);
    mismatches(&facts(&original), &facts(&changed))
}

fn file_mut<'a>(
    set: &'a mut FileDescriptorSet,
    name: &str,
) -> &'a mut prost_reflect::prost_types::FileDescriptorProto {
    set.file
        .iter_mut()
        .find(|f| f.name() == name)
        .expect("file exists")
}

fn message_mut<'a>(
    set: &'a mut FileDescriptorSet,
    file: &str,
    name: &str,
) -> &'a mut DescriptorProto {
    file_mut(set, file)
        .message_type
        .iter_mut()
        .find(|m| m.name() == name)
        .expect("message exists")
}

fn field_mut<'a>(message: &'a mut DescriptorProto, name: &str) -> &'a mut FieldDescriptorProto {
    message
        .field
        .iter_mut()
        .find(|f| f.name() == name)
        .expect("field exists")
}

#[test]
fn the_comparison_reports_each_kind_of_wire_change() {
    assert!(report_after(|_| {}).is_empty(), "identical sets must agree");

    let found = report_after(|set| {
        let action = message_mut(set, "dispatcher.proto", "AssignedAction");
        field_mut(action, "task_run_external_id").number = Some(30);
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("differs: field .AssignedAction.task_run_external_id"));
    assert!(
        found[0].contains("number=8") && found[0].contains("number=30"),
        "{}",
        found[0]
    );

    let found = report_after(|set| {
        let trigger = message_mut(set, "v1/shared/trigger.proto", "TriggerWorkflowRequest");
        field_mut(trigger, "priority").proto3_optional = Some(false);
    });
    assert!(
        found
            .iter()
            .any(|f| f.contains("field .v1.TriggerWorkflowRequest.priority")),
        "{found:?}"
    );

    let found = report_after(|set| {
        let service = &mut file_mut(set, "dispatcher.proto").service[0];
        let listen = service
            .method
            .iter_mut()
            .find(|m| m.name() == "ListenV2")
            .unwrap();
        listen.server_streaming = Some(false);
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("differs: rpc /Dispatcher/ListenV2"),
        "{found:?}"
    );

    let found = report_after(|set| {
        let file = file_mut(set, "v1/workflows.proto");
        let status = file
            .enum_type
            .iter_mut()
            .find(|e| e.name() == "RunStatus")
            .unwrap();
        status.value.retain(|v| v.name() != "EVICTED");
    });
    assert_eq!(
        found,
        vec!["missing in acf: enum_value .v1.RunStatus.EVICTED\n    hatchet: 5"]
    );

    let found = report_after(|set| {
        let events = file_mut(set, "events.proto");
        let mut extra = events.message_type[0].clone();
        extra.name = Some("Unexpected".into());
        events.message_type.push(extra);
    });
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|f| f.starts_with("extra in acf")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f.contains("message .Unexpected")),
        "{found:?}"
    );
}
