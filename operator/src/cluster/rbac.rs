//! The Kubernetes API access the operator's code makes, resource by
//! resource: the lists the Helm chart's ClusterRole and its Role in the
//! operator's own namespace must equal (a test compares them). A call added to the code without its verb here fails in
//! a cluster with the chart's RBAC; a verb here that no code uses is a grant
//! too many. Pure.

/// One rule: an API group, its resources, and the verbs used on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub api_group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

/// Every access the operator makes, in a stable order.
pub const RULES: &[Rule] = &[
    // the desired state: watched by reflectors and the controller
    Rule {
        api_group: "dns.zentralink.net",
        resources: &[
            "tenants",
            "tenantpolicies",
            "providerconnections",
            "approvals",
            "dnssnapshots",
        ],
        verbs: &["get", "list", "watch"],
    },
    // zones: watched, and the finalizer added and removed
    Rule {
        api_group: "dns.zentralink.net",
        resources: &["dnszones"],
        verbs: &["get", "list", "watch", "patch"],
    },
    // change requests: user-made rollbacks watched, the store's requests mirrored by server-side apply
    Rule {
        api_group: "dns.zentralink.net",
        resources: &["dnschangerequests"],
        verbs: &["get", "list", "watch", "create", "patch"],
    },
    // status, written by server-side apply
    Rule {
        api_group: "dns.zentralink.net",
        resources: &[
            "tenants/status",
            "tenantpolicies/status",
            "providerconnections/status",
            "dnszones/status",
            "dnschangerequests/status",
            "approvals/status",
            "dnssnapshots/status",
        ],
        verbs: &["get", "patch"],
    },
    // credentials: Secrets labelled dns.zentralink.net/credentials=true
    Rule {
        api_group: "",
        resources: &["secrets"],
        verbs: &["get", "list", "watch"],
    },
    // Events for every decision
    Rule {
        api_group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
    },
    // the webhook's CA bundle, patched in when the operator makes its own certificate
    Rule {
        api_group: "admissionregistration.k8s.io",
        resources: &[
            "validatingwebhookconfigurations",
            "mutatingwebhookconfigurations",
        ],
        verbs: &["get", "patch"],
    },
];

/// Access only in the operator's own namespace (a Role there, not cluster-wide).
pub const NAMESPACED_RULES: &[Rule] = &[
    // leader election and shards: the Leases live in the operator's namespace
    Rule {
        api_group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["get", "create", "update"],
    },
    // the webhook's generated CA, shared by the replicas through one Secret
    Rule {
        api_group: "",
        resources: &["secrets"],
        verbs: &["create"],
    },
];
