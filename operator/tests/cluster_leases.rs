//! Leader election and sharding against a real Kubernetes API server: several
//! `Shards` elections in this process (each its own identity, 3 s leases) on
//! real Leases in a namespace made for the test and deleted after it. A
//! watchdog samples every replica every 10 ms and fails the test if two ever
//! claim the same shard. Needs KUBECONFIG (an API server on loopback is
//! enough: no kubelet, no pods); run with `cargo nextest run -p
//! zentralink-operator --test cluster_leases --run-ignored all`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tokio::sync::oneshot;
use zentralink_operator::cluster::lease::{LeaseOptions, Shards};
use zentralink_operator::reconcile::SystemClock;

const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_millis(500);
const RETRY: Duration = Duration::from_millis(500);
/// Room for the API server's latency on top of the lease's own timings.
const SLACK: Duration = Duration::from_secs(2);

fn options(namespace: &str, identity: &str, shards: u32) -> LeaseOptions {
    LeaseOptions {
        lease_duration: LEASE,
        renew_interval: RENEW,
        retry_interval: RETRY,
        ..LeaseOptions::new(namespace, identity, shards)
    }
}

async fn cluster() -> kube::Client {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: point it at a Kubernetes API server (kind, k3d, or \
             kube-apiserver with etcd on loopback; no kubelet is needed) and run the ignored tests"
        );
    }
    zentralink_providers::install_tls_provider();
    kube::Client::try_default()
        .await
        .expect("cannot reach the API server KUBECONFIG names")
}

/// Runs `test` in a fresh namespace and deletes the namespace afterwards,
/// whether the test passed or not.
async fn in_namespace<F, Fut>(test: F)
where
    F: FnOnce(kube::Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = cluster().await;
    let name = format!("zl-leases-{}", uuid::Uuid::new_v4().simple());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("cannot create the test namespace");
    let outcome = tokio::spawn(test(client.clone(), name.clone())).await;
    let leases: Api<Lease> = Api::namespaced(client, &name);
    let _ = leases
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let _ = namespaces.delete(&name, &DeleteParams::default()).await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("the test was cancelled: {e}");
    }
}

/// One replica's election, as `zentralink operator` runs it.
struct Replica {
    identity: String,
    shards: Shards,
    task: tokio::task::JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl Replica {
    fn start(client: &kube::Client, namespace: &str, identity: &str, shards: u32) -> Replica {
        Self::with(client, options(namespace, identity, shards))
    }

    fn with(client: &kube::Client, options: LeaseOptions) -> Replica {
        let identity = options.identity.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (shards, task) =
            Shards::spawn(client.clone(), options, Arc::new(SystemClock), async move {
                let _ = stopped.await;
            });
        Replica {
            identity,
            shards,
            task,
            stop: Some(stop),
        }
    }

    /// Dies without releasing anything, as a SIGKILLed process would.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Stops cleanly: steps down and releases its Lease.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(LEASE + SLACK, self.task)
            .await
            .expect("the election did not end after shutdown")
            .unwrap();
    }
}

/// Samples every replica it watches and remembers any instant at which two
/// claimed the same shard.
struct Watchdog {
    replicas: Arc<Mutex<Vec<(String, Shards)>>>,
    violations: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watchdog {
    fn start() -> Watchdog {
        let replicas: Arc<Mutex<Vec<(String, Shards)>>> = Arc::default();
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let started = Instant::now();
        let task = tokio::spawn({
            let replicas = replicas.clone();
            let violations = violations.clone();
            async move {
                loop {
                    for (shard, holders) in holders_of(&replicas.lock().unwrap()) {
                        if holders.len() > 1 {
                            violations.lock().unwrap().push(format!(
                                "at {:?}: {holders:?} all claim shard {shard}",
                                started.elapsed()
                            ));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Watchdog {
            replicas,
            violations,
            task,
        }
    }

    fn watch(&self, replica: &Replica) {
        self.replicas
            .lock()
            .unwrap()
            .push((replica.identity.clone(), replica.shards.clone()));
    }

    /// Who claims which shard now.
    fn holders(&self) -> BTreeMap<u32, Vec<String>> {
        holders_of(&self.replicas.lock().unwrap())
    }

    /// The one replica holding `shard`, if exactly one does.
    fn holder_of(&self, shard: u32) -> Option<String> {
        match self.holders().remove(&shard) {
            Some(h) if h.len() == 1 => h.into_iter().next(),
            _ => None,
        }
    }

    fn assert_never_shared(self) {
        self.task.abort();
        let violations = self.violations.lock().unwrap();
        assert!(
            violations.is_empty(),
            "two replicas claimed the same shard:\n{}",
            violations.join("\n")
        );
    }
}

fn holders_of(replicas: &[(String, Shards)]) -> BTreeMap<u32, Vec<String>> {
    let mut holders: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (identity, shards) in replicas {
        if let Some(shard) = shards.held() {
            holders.entry(shard).or_default().push(identity.clone());
        }
    }
    holders
}

/// Waits until `check` holds; returns how long that took.
async fn wait_until(what: &str, limit: Duration, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// Watches for `period` that `check` holds at every sample.
async fn holds_throughout(what: &str, period: Duration, check: impl Fn() -> bool) {
    let started = Instant::now();
    while started.elapsed() < period {
        assert!(check(), "{what}: broken after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn lease_holder(client: &kube::Client, namespace: &str, shard: u32) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let lease = leases
        .get(&LeaseOptions::new(namespace, "-", 1).lease_name(shard))
        .await
        .unwrap();
    lease.spec.and_then(|s| s.holder_identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn one_shard_one_leader_and_a_dead_leader_is_replaced_once_its_lease_expires() {
    in_namespace(|client, ns| async move {
        let dog = Watchdog::start();
        let mut replicas: Vec<Replica> = (0..3)
            .map(|i| Replica::start(&client, &ns, &format!("r{i}"), 1))
            .collect();
        replicas.iter().for_each(|r| dog.watch(r));

        wait_until("a leader is elected", LEASE + SLACK, || {
            dog.holder_of(0).is_some()
        })
        .await;
        let leader = dog.holder_of(0).unwrap();
        holds_throughout("the same single leader, renewing", 2 * LEASE, || {
            dog.holder_of(0).as_deref() == Some(leader.as_str())
        })
        .await;
        assert_eq!(
            lease_holder(&client, &ns, 0).await.as_deref(),
            Some(leader.as_str())
        );
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
        let lease = leases.get("zentralink-shard-0").await.unwrap();
        let spec = lease.spec.unwrap();
        assert_eq!(spec.lease_duration_seconds, Some(3));
        assert!(spec.renew_time.is_some() && spec.acquire_time.is_some());

        // the leader dies without releasing: another takes over once its Lease expires
        let position = replicas.iter().position(|r| r.identity == leader).unwrap();
        replicas.remove(position).kill().await;
        let took = wait_until(
            "another replica takes over from the dead leader",
            LEASE + RETRY + SLACK,
            || dog.holder_of(0).is_some_and(|h| h != leader),
        )
        .await;
        assert!(
            took >= LEASE - RENEW - Duration::from_millis(200),
            "taken over after {took:?}: before the dead leader's Lease expired"
        );
        let successor = dog.holder_of(0).unwrap();
        assert_eq!(
            lease_holder(&client, &ns, 0).await.as_deref(),
            Some(successor.as_str())
        );
        holds_throughout("the successor keeps leading", LEASE, || {
            dog.holder_of(0).as_deref() == Some(successor.as_str())
        })
        .await;

        for r in replicas {
            r.stop().await;
        }
        dog.assert_never_shared();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn three_shards_three_holders_and_a_standby_takes_a_dead_replicas_shard() {
    in_namespace(|client, ns| async move {
        let dog = Watchdog::start();
        let mut replicas: Vec<Replica> = (0..3)
            .map(|i| Replica::start(&client, &ns, &format!("r{i}"), 3))
            .collect();
        replicas.iter().for_each(|r| dog.watch(r));

        wait_until("every shard is held", LEASE + SLACK, || {
            let holders = dog.holders();
            holders.len() == 3 && holders.values().all(|h| h.len() == 1)
        })
        .await;
        let held: BTreeSet<u32> = replicas.iter().filter_map(|r| r.shards.held()).collect();
        assert_eq!(
            held,
            BTreeSet::from([0, 1, 2]),
            "each replica holds one shard"
        );
        for shard in 0..3 {
            let holder = dog.holder_of(shard).unwrap();
            assert_eq!(lease_holder(&client, &ns, shard).await, Some(holder));
        }

        // a fourth replica finds no free shard and waits
        let standby = Replica::start(&client, &ns, "r3", 3);
        dog.watch(&standby);
        holds_throughout("the standby holds nothing", 2 * LEASE, || {
            standby.shards.held().is_none()
        })
        .await;
        let before = dog.holders();

        // one dies; the standby, which held none, takes its shard
        let victim = replicas.remove(1);
        let orphaned = victim.shards.held().unwrap();
        victim.kill().await;
        wait_until(
            "the standby takes the dead replica's shard",
            LEASE + RETRY + SLACK,
            || standby.shards.held() == Some(orphaned),
        )
        .await;
        for r in &replicas {
            let shard = r.shards.held();
            assert!(shard.is_some(), "{} lost its shard", r.identity);
            assert_eq!(
                before.get(&shard.unwrap()),
                Some(&vec![r.identity.clone()]),
                "{} moved",
                r.identity
            );
        }
        assert_eq!(
            lease_holder(&client, &ns, orphaned).await.as_deref(),
            Some("r3")
        );

        standby.stop().await;
        for r in replicas {
            r.stop().await;
        }
        dog.assert_never_shared();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn a_released_lease_is_taken_over_without_waiting_for_it_to_expire() {
    in_namespace(|client, ns| async move {
        let long = |identity: &str| LeaseOptions {
            lease_duration: Duration::from_secs(20),
            renew_interval: Duration::from_secs(1),
            retry_interval: RETRY,
            ..LeaseOptions::new(&ns, identity, 1)
        };
        let dog = Watchdog::start();
        let first = Replica::with(&client, long("r0"));
        dog.watch(&first);
        wait_until("r0 leads", SLACK, || first.shards.held() == Some(0)).await;
        let second = Replica::with(&client, long("r1"));
        dog.watch(&second);
        holds_throughout("r1 waits", 2 * RETRY, || second.shards.held().is_none()).await;

        first.stop().await;
        let took = wait_until("r1 takes the released Lease", RETRY + SLACK, || {
            second.shards.held() == Some(0)
        })
        .await;
        assert!(took < Duration::from_secs(20), "{took:?}");
        assert_eq!(lease_holder(&client, &ns, 0).await.as_deref(), Some("r1"));

        second.stop().await;
        assert_eq!(
            lease_holder(&client, &ns, 0).await,
            None,
            "released on stop"
        );
        dog.assert_never_shared();
    })
    .await;
}
