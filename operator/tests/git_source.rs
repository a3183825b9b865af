//! The git source against real git: repositories made with the git CLI,
//! fetched over file://, git:// (git daemon), http:// with a token (git
//! http-backend behind a local HTTP server) and ssh:// with a key file (the
//! sshd of scripts/sshd-server.sh). No mocks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common_git;

use std::time::Instant;

use common_git::{
    ALICE, BOB, GitDaemon, HttpGitServer, Upstream, free_port, ssh_keygen, ssh_server, zone_yaml,
};
use zentralink_model::secrets::SecretString;
use zentralink_operator::source::git::{
    CommitInfo, GitCredentials, GitSource, GitSourceOptions, HostKeyCheck,
};
use zentralink_operator::source::{Revision, Source, SourceError};

fn git_source(options: GitSourceOptions) -> GitSource {
    GitSource::new(options).unwrap()
}

async fn fetch_ok(source: &GitSource) -> (Revision, CommitInfo) {
    match source.fetch_with_commit().await {
        Ok(read) => read,
        Err(e) => panic!("{} did not fetch: {e}", source.name()),
    }
}

/// The message of an `Unreachable` error; panics on anything else.
fn unreachable(result: Result<Revision, SourceError>) -> String {
    match result {
        Err(SourceError::Unreachable { message, .. }) => message,
        Err(e) => panic!("expected Unreachable, got: {e}"),
        Ok(r) => panic!("expected Unreachable, read {}", r.id),
    }
}

/// The errors of an `Invalid` error, and its revision; panics on anything else.
fn invalid(result: Result<Revision, SourceError>) -> (String, String) {
    match result {
        Err(SourceError::Invalid {
            revision, errors, ..
        }) => (revision, errors.to_string()),
        Err(e) => panic!("expected Invalid, got: {e}"),
        Ok(r) => panic!("expected Invalid, read {}", r.id),
    }
}

fn zone_files(revision: &Revision) -> Vec<(String, String)> {
    revision
        .catalog
        .zones
        .iter()
        .map(|z| (z.name.clone(), z.origin.file.to_string()))
        .collect()
}

/// The upstream with the acme fixture committed by Alice and pushed.
fn acme_upstream(prefix: &str) -> (Upstream, String) {
    let upstream = Upstream::new();
    upstream.write_acme(prefix);
    let commit = upstream.commit(ALICE, "acme: two zones");
    upstream.push();
    (upstream, commit)
}

#[tokio::test]
async fn a_file_url_reads_the_branch_into_a_validated_revision() {
    let (upstream, commit) = acme_upstream("");
    let source = git_source(
        GitSourceOptions::new(upstream.url(), upstream.state_dir())
            .with_files_root(upstream.work.clone()),
    );
    assert_eq!(source.name(), format!("git:{}#main", upstream.url()));

    let (revision, info) = fetch_ok(&source).await;
    assert_eq!(revision.id, format!("main@sha1:{commit}"));
    assert_eq!(info.id, commit);
    assert_eq!(info.summary, "acme: two zones");
    assert_eq!(info.author.identity(), ALICE.identity());
    assert!(info.signature.is_none());
    assert_eq!(revision.catalog.tenants.len(), 1);
    assert_eq!(revision.catalog.connections.len(), 1);
    assert_eq!(
        zone_files(&revision),
        vec![
            (
                "acme-example".to_owned(),
                "acme/acme.example.yaml".to_owned()
            ),
            ("mail-acme-example".to_owned(), "acme/mail.yaml".to_owned()),
        ]
    );
    assert_eq!(revision.default_requester, ALICE.identity());
    assert_eq!(
        revision.files_root.as_deref(),
        Some(upstream.work.as_path())
    );
    // The local clone is a bare repository under the state directory.
    assert!(
        source
            .mirror_dir()
            .starts_with(upstream.state_dir().join("git"))
    );
    assert!(source.mirror_dir().join("HEAD").is_file());

    // Fetching again without a new commit reads the same revision.
    assert_eq!(fetch_ok(&source).await.0.id, revision.id);
}

#[tokio::test]
async fn a_plain_local_path_is_a_repository_url_too() {
    let (upstream, commit) = acme_upstream("");
    let source = git_source(GitSourceOptions::new(
        upstream.bare.display().to_string(),
        upstream.state_dir(),
    ));
    assert_eq!(fetch_ok(&source).await.0.id, format!("main@sha1:{commit}"));
}

#[tokio::test]
async fn only_the_sub_directory_is_read_and_hidden_or_other_files_are_skipped() {
    let upstream = Upstream::new();
    upstream.write_acme("zones");
    upstream.write("other/broken.yaml", "kind: [unclosed\n");
    upstream.write("zones/.github/workflow.yaml", "kind: [unclosed\n");
    upstream.write("zones/.hidden.yaml", "kind: [unclosed\n");
    upstream.write("zones/README.md", "# zones\n");
    upstream.write("zones/acme/notes.txt", "kind: [unclosed\n");
    let commit = upstream.commit(ALICE, "zones under zones/");
    upstream.push();

    let source = git_source(
        GitSourceOptions::new(upstream.url(), upstream.state_dir()).with_path("/zones/"),
    );
    assert_eq!(source.name(), format!("git:{}#main:zones", upstream.url()));
    let (revision, _) = fetch_ok(&source).await;
    assert_eq!(revision.id, format!("main@sha1:{commit}"));
    // Files are named by their path in the repository, sub-directory included.
    assert_eq!(
        zone_files(&revision),
        vec![
            (
                "acme-example".to_owned(),
                "zones/acme/acme.example.yaml".to_owned()
            ),
            (
                "mail-acme-example".to_owned(),
                "zones/acme/mail.yaml".to_owned()
            ),
        ]
    );

    // The whole repository includes other/broken.yaml, which does not parse.
    let whole = git_source(GitSourceOptions::new(
        upstream.url(),
        upstream.dir.path().join("state-whole"),
    ));
    let (_, errors) = invalid(whole.fetch().await);
    assert!(errors.contains("other/broken.yaml"), "{errors}");
    assert!(!errors.contains(".github"), "{errors}");

    // A sub-directory that is not there is an invalid revision, not an outage.
    let missing = git_source(
        GitSourceOptions::new(upstream.url(), upstream.dir.path().join("state-missing"))
            .with_path("nope"),
    );
    let (revision_id, errors) = invalid(missing.fetch().await);
    assert_eq!(revision_id, format!("main@sha1:{commit}"));
    assert!(errors.contains("nope: no such directory"), "{errors}");
}

#[tokio::test]
async fn a_tag_is_read_as_the_commit_it_names() {
    let (upstream, tagged) = acme_upstream("");
    upstream.git(&["tag", "-a", "-m", "release 1", "v1"]);
    upstream.git(&["tag", "light"]);
    upstream.write(
        "acme/extra.yaml",
        &zone_yaml("extra-acme-example", "extra.acme.example.", "192.0.2.99"),
    );
    upstream.commit(BOB, "a third zone");
    upstream.push();
    upstream.push_tags();

    for tag in ["v1", "light", "refs/tags/v1"] {
        let source = git_source(
            GitSourceOptions::new(upstream.url(), upstream.state_dir()).with_reference(tag),
        );
        let (revision, info) = fetch_ok(&source).await;
        assert_eq!(revision.id, format!("{tag}@sha1:{tagged}"));
        assert_eq!(info.id, tagged);
        assert_eq!(revision.catalog.zones.len(), 2, "{tag}");
    }
    let main = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    assert_eq!(fetch_ok(&main).await.0.catalog.zones.len(), 3);
}

#[tokio::test]
async fn a_new_commit_gives_a_new_revision() {
    let (upstream, first) = acme_upstream("");
    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    let (revision, _) = fetch_ok(&source).await;
    assert_eq!(revision.id, format!("main@sha1:{first}"));

    upstream.write(
        "acme/extra.yaml",
        &zone_yaml("extra-acme-example", "extra.acme.example.", "192.0.2.99"),
    );
    let second = upstream.commit(BOB, "a third zone");
    upstream.push();
    let (revision, info) = fetch_ok(&source).await;
    assert_eq!(revision.id, format!("main@sha1:{second}"));
    assert_eq!(info.author.identity(), BOB.identity());
    assert_eq!(revision.catalog.zones.len(), 3);
    assert_eq!(revision.default_requester, BOB.identity());
}

#[tokio::test]
async fn a_force_pushed_branch_is_followed() {
    let (upstream, first) = acme_upstream("");
    upstream.write(
        "acme/extra.yaml",
        &zone_yaml("extra-acme-example", "extra.acme.example.", "192.0.2.99"),
    );
    let abandoned = upstream.commit(BOB, "a third zone");
    upstream.push();
    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    assert_eq!(
        fetch_ok(&source).await.0.id,
        format!("main@sha1:{abandoned}")
    );

    // History rewritten: the third zone is gone, another commit is on top.
    upstream.git(&["reset", "-q", "--hard", &first]);
    upstream.write(
        "acme/other.yaml",
        &zone_yaml("other-acme-example", "other.acme.example.", "192.0.2.98"),
    );
    let rewritten = upstream.commit(ALICE, "another third zone");
    upstream.push();
    let (revision, _) = fetch_ok(&source).await;
    assert_eq!(revision.id, format!("main@sha1:{rewritten}"));
    let names: Vec<String> = zone_files(&revision).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.contains(&"other-acme-example".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"extra-acme-example".to_owned()),
        "{names:?}"
    );

    // The abandoned commit stays readable from the local clone.
    let old = source.fetch_commit(&abandoned).await.unwrap();
    assert_eq!(old.id, format!("main@sha1:{abandoned}"));
}

#[tokio::test]
async fn an_invalid_document_is_refused_with_its_repository_path_and_line() {
    let upstream = Upstream::new();
    upstream.write_acme("");
    let bad = zone_yaml("acme-example", "acme.example.", "not-an-address");
    let line = bad
        .lines()
        .position(|l| l.contains("not-an-address"))
        .unwrap()
        + 1;
    upstream.write("acme/acme.example.yaml", &bad);
    let commit = upstream.commit(ALICE, "a typo");
    upstream.push();

    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    let (revision, errors) = invalid(source.fetch().await);
    assert_eq!(revision, format!("main@sha1:{commit}"));
    assert!(
        errors.contains(&format!(
            "acme/acme.example.yaml:{line}: spec.recordSets[1]"
        )),
        "{errors}"
    );
}

#[tokio::test]
async fn an_unreachable_repository_or_unknown_reference_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = git_source(GitSourceOptions::new(
        format!("file://{}/nothing-here.git", dir.path().display()),
        dir.path().join("state"),
    ));
    let message = unreachable(missing.fetch().await);
    assert!(message.contains("fetching main failed"), "{message}");

    // Nothing listens on the port.
    let closed = git_source(GitSourceOptions::new(
        format!("git://127.0.0.1:{}/zones.git", free_port()),
        dir.path().join("state"),
    ));
    let message = unreachable(closed.fetch().await);
    assert!(message.contains("fetching main failed"), "{message}");

    let (upstream, _) = acme_upstream("");
    let unknown = git_source(
        GitSourceOptions::new(upstream.url(), upstream.state_dir()).with_reference("nope"),
    );
    let message = unreachable(unknown.fetch().await);
    assert!(
        message.contains("no branch or tag named nope") && message.contains("main"),
        "{message}"
    );
}

#[tokio::test]
async fn symbolic_links_and_submodules_are_refused_by_path() {
    let upstream = Upstream::new();
    upstream.write_acme("");
    std::fs::create_dir_all(upstream.work.join("shared")).unwrap();
    std::os::unix::fs::symlink("mail.yaml", upstream.work.join("acme/alias.yaml")).unwrap();
    std::os::unix::fs::symlink("../shared", upstream.work.join("acme/linked")).unwrap();
    std::os::unix::fs::symlink("../README", upstream.work.join("acme/notes")).unwrap();
    upstream.write("shared/more.yaml", TENANT_COPY);
    upstream.git(&["add", "-A"]);
    // A submodule at vendor/zones: a commit entry (mode 160000) whose commit
    // is not in this repository.
    let empty_tree = upstream.git(&["mktree"]);
    let elsewhere = upstream.git(&["commit-tree", &empty_tree, "-m", "elsewhere"]);
    upstream.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{elsewhere},vendor/zones"),
    ]);
    upstream.commit_index(ALICE, "links and a submodule");
    upstream.push();

    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    let (_, errors) = invalid(source.fetch().await);
    assert!(
        errors.contains("acme/alias.yaml: is a symbolic link"),
        "{errors}"
    );
    assert!(
        errors.contains("acme/linked: is a symbolic link to a directory"),
        "{errors}"
    );
    assert!(
        errors.contains("vendor/zones: is a git submodule"),
        "{errors}"
    );
    // A link to something that is neither a manifest nor a directory is no concern.
    assert!(!errors.contains("acme/notes"), "{errors}");
    assert_eq!(errors.lines().count(), 3, "{errors}");
}

/// A valid document of its own, in the directory a link points to.
const TENANT_COPY: &str = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata:
  name: shared
spec:
  displayName: Shared
  namespaces: [shared]
  allowedDomains: [shared.example.]
";

#[tokio::test]
async fn a_blob_larger_than_the_manifest_limit_is_refused_unread() {
    let upstream = Upstream::new();
    upstream.write_acme("");
    upstream.git(&["add", "-A"]);
    let limit = zentralink_operator::source::directory::MAX_MANIFEST_BYTES as usize;
    upstream.stage_blob("acme/huge.yaml", "100644", &vec![b'#'; limit + 1]);
    upstream.commit_index(ALICE, "a huge file");
    upstream.push();

    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    let (_, errors) = invalid(source.fetch().await);
    assert!(
        errors.contains(&format!(
            "acme/huge.yaml: is {} bytes; files larger than {limit} bytes are not read",
            limit + 1
        )),
        "{errors}"
    );
    assert_eq!(errors.lines().count(), 1, "{errors}");
}

#[tokio::test]
async fn each_zone_is_requested_by_the_author_of_the_last_commit_that_changed_its_file() {
    let (upstream, _) = acme_upstream("");
    // Bob changes the mail zone; then Alice changes only the tenant.
    upstream.write(
        "acme/mail.yaml",
        &zone_yaml("mail-acme-example", "mail.acme.example.", "192.0.2.26"),
    );
    upstream.commit(BOB, "mail: move www");
    upstream.write(
        "tenants/acme.yaml",
        &common_git::TENANT.replace("ACME Corporation", "ACME"),
    );
    upstream.commit(ALICE, "tenant: shorter name");
    upstream.push();

    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    let (revision, _) = fetch_ok(&source).await;
    assert_eq!(
        revision.requester("acme", "mail-acme-example"),
        BOB.identity()
    );
    assert_eq!(revision.requester("acme", "acme-example"), ALICE.identity());
    assert_eq!(revision.default_requester, ALICE.identity());
    assert_eq!(revision.requesters.len(), 2);

    // Bob changes acme.example on a branch; Alice merges it with a merge
    // commit. The change is Bob's: the merge only brought it in.
    upstream.git(&["checkout", "-q", "-b", "bob/www"]);
    upstream.write(
        "acme/acme.example.yaml",
        &zone_yaml("acme-example", "acme.example.", "192.0.2.11"),
    );
    upstream.commit(BOB, "acme: move www");
    upstream.git(&["checkout", "-q", "main"]);
    upstream.write("tenants/acme.yaml", common_git::TENANT);
    upstream.commit(ALICE, "tenant: full name again");
    upstream.git_as(
        ALICE,
        &["merge", "-q", "--no-ff", "-m", "merge bob/www", "bob/www"],
    );
    upstream.push();

    let (revision, info) = fetch_ok(&source).await;
    assert_eq!(info.summary, "merge bob/www");
    assert_eq!(revision.requester("acme", "acme-example"), BOB.identity());
    assert_eq!(
        revision.requester("acme", "mail-acme-example"),
        BOB.identity()
    );
    assert_eq!(revision.default_requester, ALICE.identity());

    // Alice edits the same zone in the merge itself (an "evil merge"): hers.
    upstream.git(&["checkout", "-q", "-b", "bob/mail"]);
    upstream.write(
        "acme/mail.yaml",
        &zone_yaml("mail-acme-example", "mail.acme.example.", "192.0.2.27"),
    );
    upstream.commit(BOB, "mail: move www again");
    upstream.git(&["checkout", "-q", "main"]);
    upstream.git_as(
        ALICE,
        &["merge", "-q", "--no-ff", "--no-commit", "bob/mail"],
    );
    upstream.write(
        "acme/mail.yaml",
        &zone_yaml("mail-acme-example", "mail.acme.example.", "192.0.2.28"),
    );
    upstream.commit(ALICE, "merge bob/mail, with another address");
    upstream.push();
    let (revision, _) = fetch_ok(&source).await;
    assert_eq!(
        revision.requester("acme", "mail-acme-example"),
        ALICE.identity()
    );
    assert_eq!(revision.requester("acme", "acme-example"), BOB.identity());
}

#[tokio::test]
async fn fetch_commit_reads_an_older_commit_from_the_local_clone_without_fetching() {
    let (upstream, first) = acme_upstream("");
    upstream.write(
        "acme/extra.yaml",
        &zone_yaml("extra-acme-example", "extra.acme.example.", "192.0.2.99"),
    );
    let second = upstream.commit(BOB, "a third zone");
    upstream.push();
    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    assert_eq!(fetch_ok(&source).await.0.id, format!("main@sha1:{second}"));

    // The upstream is gone: only the local clone can answer.
    std::fs::remove_dir_all(&upstream.bare).unwrap();
    assert!(matches!(
        source.fetch().await,
        Err(SourceError::Unreachable { .. })
    ));

    let (revision, info) = source.fetch_commit_with_info(&first).await.unwrap();
    assert_eq!(revision.id, format!("main@sha1:{first}"));
    assert_eq!(revision.catalog.zones.len(), 2);
    assert_eq!(info.author.identity(), ALICE.identity());
    // A revision id works as well as a commit id.
    let again = source
        .fetch_commit(&format!("main@sha1:{second}"))
        .await
        .unwrap();
    assert_eq!(again.catalog.zones.len(), 3);
    assert_eq!(
        again.requester("acme", "extra-acme-example"),
        BOB.identity()
    );
    assert_eq!(again.requester("acme", "acme-example"), ALICE.identity());

    let never = "0123456789abcdef0123456789abcdef01234567";
    let message = unreachable(source.fetch_commit(never).await);
    assert!(message.contains("is not in the local clone"), "{message}");
    let message = unreachable(source.fetch_commit("HEAD~1").await);
    assert!(message.contains("is not a commit id"), "{message}");

    // A source that never fetched has no clone to read from.
    let fresh = git_source(GitSourceOptions::new(
        upstream.url(),
        upstream.dir.path().join("fresh-state"),
    ));
    let message = unreachable(fresh.fetch_commit(&first).await);
    assert!(message.contains("fetch first"), "{message}");
}

#[tokio::test]
async fn commit_info_carries_the_committer_and_an_ssh_signature() {
    let upstream = Upstream::new();
    upstream.write_acme("");
    let key = ssh_keygen(upstream.dir.path(), "signing_key");
    upstream.git_as(BOB, &["add", "-A"]);
    upstream.git_as(
        BOB,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("user.signingkey={}", key.display()),
            "commit",
            "-q",
            "-S",
            "-m",
            "signed",
        ],
    );
    let signed = upstream.head();
    // Alice re-commits Bob's change (an amend keeps Bob as the author).
    upstream.git_as(
        ALICE,
        &["commit", "-q", "--amend", "--no-edit", "--no-gpg-sign"],
    );
    let unsigned = upstream.head();
    upstream.git(&["branch", "signed", &signed]);
    upstream.push();
    upstream.git(&["push", "-q", "origin", "signed"]);

    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    let (_, info) = fetch_ok(&source).await;
    assert_eq!(info.id, unsigned);
    assert_eq!(info.author.identity(), BOB.identity());
    assert_eq!(info.committer.identity(), ALICE.identity());
    assert!(info.signature.is_none());
    assert!(info.author.when().is_some());

    let signed_source = git_source(
        GitSourceOptions::new(upstream.url(), upstream.state_dir()).with_reference("signed"),
    );
    let (_, info) = fetch_ok(&signed_source).await;
    let signature = info.signature.expect("the commit is signed");
    assert!(signature.is_ssh());
    assert!(!signature.signed_data.windows(6).any(|w| w == b"gpgsig"));
    // The signature verifies over the signed data with OpenSSH itself.
    let sig_file = upstream.dir.path().join("commit.sig");
    std::fs::write(&sig_file, &signature.signature).unwrap();
    let mut check = std::process::Command::new("ssh-keygen")
        .args(["-Y", "check-novalidate", "-n", "git", "-s"])
        .arg(&sig_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(&signature.signed_data)
        .unwrap();
    assert!(check.wait().unwrap().success());
}

#[tokio::test]
async fn concurrent_fetches_of_one_source_take_turns() {
    let (upstream, commit) = acme_upstream("");
    let source = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    let (a, b, c) = tokio::join!(source.fetch(), source.fetch(), source.fetch());
    for revision in [a, b, c] {
        assert_eq!(revision.unwrap().id, format!("main@sha1:{commit}"));
    }
}

#[tokio::test]
async fn requesters_are_found_in_one_walk_of_a_long_history() {
    const FILES: usize = 300;
    const COMMITS: usize = 3000;
    let upstream = Upstream::new();
    // fast-import: a first commit with every file, then one change per commit,
    // never touching files 0..100 again (the walk must reach the root for them).
    let mut stream = String::new();
    let mut time = 1_700_000_000u64;
    let commit = |stream: &mut String,
                  who: common_git::Person,
                  files: &[(String, String)],
                  time: u64| {
        stream.push_str(&format!(
            "commit refs/heads/main\nauthor {} <{}> {time} +0000\ncommitter {} <{}> {time} +0000\ndata 6\nchange\n",
            who.name, who.email, who.name, who.email
        ));
        for (path, text) in files {
            stream.push_str(&format!(
                "M 100644 inline {path}\ndata {}\n{text}\n",
                text.len()
            ));
        }
    };
    let path_of = |i: usize| format!("zones/team{:02}/z{i:03}.yaml", i % 30);
    let zone = |i: usize, n: usize| {
        zone_yaml(
            &format!("z{i:03}"),
            &format!("z{i:03}.acme.example."),
            &format!("192.0.2.{}", n % 250),
        )
    };
    let mut first: Vec<(String, String)> = (0..FILES).map(|i| (path_of(i), zone(i, 0))).collect();
    first.push(("tenants/acme.yaml".into(), common_git::TENANT.into()));
    first.push(("zones/providers.yaml".into(), common_git::PROVIDERS.into()));
    commit(&mut stream, ALICE, &first, time);
    let mut last_author = vec![ALICE; FILES];
    for n in 1..COMMITS {
        time += 60;
        let i = 100 + (n * 7) % (FILES - 100);
        let who = if n % 3 == 0 { BOB } else { ALICE };
        last_author[i] = who;
        commit(&mut stream, who, &[(path_of(i), zone(i, n))], time);
    }
    let mut import = std::process::Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&upstream.bare)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    import
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    assert!(import.wait().unwrap().success());

    let source_all = git_source(GitSourceOptions::new(upstream.url(), upstream.state_dir()));
    let started = Instant::now();
    let (revision, _) = fetch_ok(&source_all).await;
    let elapsed = started.elapsed();
    assert_eq!(revision.catalog.zones.len(), FILES);
    for (i, who) in last_author.iter().enumerate() {
        assert_eq!(
            revision.requester("acme", &format!("z{i:03}")),
            who.identity(),
            "{}",
            path_of(i)
        );
    }
    // Fetch, parse, validate and the history walk over 3000 commits.
    eprintln!("fetched and read {COMMITS} commits, {FILES} zone files in {elapsed:?}");
    assert!(elapsed.as_secs() < 60, "took {elapsed:?}");
    let started = Instant::now();
    fetch_ok(&source_all).await;
    eprintln!("fetched again (nothing new) in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_git_protocol_is_fetched_from_git_daemon() {
    let (upstream, commit) = acme_upstream("");
    let daemon = GitDaemon::start(upstream.dir.path());
    let url = format!("git://127.0.0.1:{}/zones.git", daemon.port);
    let source = git_source(GitSourceOptions::new(&url, upstream.state_dir()));
    let (revision, _) = fetch_ok(&source).await;
    assert_eq!(revision.id, format!("main@sha1:{commit}"));

    upstream.write(
        "acme/extra.yaml",
        &zone_yaml("extra-acme-example", "extra.acme.example.", "192.0.2.99"),
    );
    let second = upstream.commit(BOB, "a third zone");
    upstream.push();
    assert_eq!(fetch_ok(&source).await.0.id, format!("main@sha1:{second}"));

    let unknown = git_source(GitSourceOptions::new(
        format!("git://127.0.0.1:{}/not-there.git", daemon.port),
        upstream.dir.path().join("state-unknown"),
    ));
    let message = unreachable(unknown.fetch().await);
    assert!(message.contains("fetching main failed"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_with_a_token_is_served_and_a_wrong_token_is_refused_without_showing_it() {
    const TOKEN: &str = "glpat-s3cr3t-t0ken-value";
    const WRONG: &str = "glpat-wr0ng-t0ken-value";
    let (upstream, commit) = acme_upstream("");
    let server = HttpGitServer::start(upstream.dir.path(), TOKEN).await;
    let url = server.url("zones.git");

    let source = git_source(
        GitSourceOptions::new(&url, upstream.state_dir())
            .with_credentials(GitCredentials::token(SecretString::new(TOKEN))),
    );
    assert!(!source.name().contains(TOKEN));
    assert!(!format!("{source:?}").contains(TOKEN));
    let (revision, _) = fetch_ok(&source).await;
    assert_eq!(revision.id, format!("main@sha1:{commit}"));
    {
        let requests = server.requests.lock().unwrap();
        assert!(
            requests.iter().any(|r| r
                .starts_with("GET /zones.git/info/refs?service=git-upload-pack")
                && r.ends_with(" 200")),
            "{requests:?}"
        );
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with("POST /zones.git/git-upload-pack") && r.ends_with(" 200")),
            "{requests:?}"
        );
    }

    for (credentials, expected) in [
        (
            GitCredentials::token(SecretString::new(WRONG)),
            "refused the token",
        ),
        (GitCredentials::Anonymous, "this source has none"),
    ] {
        let refused = git_source(
            GitSourceOptions::new(&url, upstream.dir.path().join("state-refused"))
                .with_credentials(credentials),
        );
        let error = refused.fetch().await.unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(matches!(error, SourceError::Unreachable { .. }), "{shown}");
        assert!(shown.contains(expected), "{shown}");
        assert!(!shown.contains(WRONG) && !shown.contains(TOKEN), "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_server_whose_certificate_is_not_trusted_is_refused() {
    const TOKEN: &str = "ghp-n0t-f0r-an-untrusted-server";
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = common_git::untrusted_tls_server(dir.path());
    let source = git_source(
        GitSourceOptions::new(
            format!("https://127.0.0.1:{port}/zones.git"),
            dir.path().join("state"),
        )
        .with_credentials(GitCredentials::token(SecretString::new(TOKEN))),
    );
    let message = unreachable(source.fetch().await);
    assert!(message.contains("certificate"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_with_a_key_file_checks_the_host_key_against_known_hosts() {
    let server = ssh_server();
    let (upstream, commit) = acme_upstream("");
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        server.user,
        server.port,
        upstream.bare.display()
    );
    let options = |state: &str, known_hosts: &std::path::Path, key: &std::path::Path| {
        GitSourceOptions::new(&url, upstream.dir.path().join(state))
            .with_credentials(GitCredentials::ssh_key(key))
            .with_host_keys(HostKeyCheck::KnownHostsFile(known_hosts.to_path_buf()))
    };

    let source = git_source(options("state", &server.known_hosts, &server.client_key));
    let (revision, _) = fetch_ok(&source).await;
    assert_eq!(revision.id, format!("main@sha1:{commit}"));

    // The same known_hosts with hashed names (ssh-keygen -H) works too.
    let hashed = upstream.dir.path().join("known_hosts_hashed");
    std::fs::copy(&server.known_hosts, &hashed).unwrap();
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&hashed)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::read_to_string(&hashed).unwrap().starts_with("|1|"));
    let source = git_source(options("state-hashed", &hashed, &server.client_key));
    assert_eq!(fetch_ok(&source).await.0.id, format!("main@sha1:{commit}"));

    // Another key listed for the host: refused as a changed key.
    let other_host_key = ssh_keygen(upstream.dir.path(), "other_host_key");
    let other_public = std::fs::read_to_string(other_host_key.with_extension("pub")).unwrap();
    let wrong = upstream.dir.path().join("known_hosts_wrong");
    let mut fields = other_public.split_whitespace();
    std::fs::write(
        &wrong,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            server.port,
            fields.next().unwrap(),
            fields.next().unwrap()
        ),
    )
    .unwrap();
    let message = unreachable(
        git_source(options("state-wrong", &wrong, &server.client_key))
            .fetch()
            .await,
    );
    assert!(message.contains("is not the one"), "{message}");

    // No key listed for the host.
    let empty = upstream.dir.path().join("known_hosts_empty");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let message = unreachable(
        git_source(options("state-empty", &empty, &server.client_key))
            .fetch()
            .await,
    );
    assert!(
        message.contains("lists no host key for [127.0.0.1]:"),
        "{message}"
    );

    // A client key the server does not authorize.
    let stranger = ssh_keygen(upstream.dir.path(), "stranger_key");
    let message = unreachable(
        git_source(options("state-stranger", &server.known_hosts, &stranger))
            .fetch()
            .await,
    );
    assert!(message.contains("refused the SSH key"), "{message}");

    // A key file that is not there.
    let message = unreachable(
        git_source(options(
            "state-nokey",
            &server.known_hosts,
            &upstream.dir.path().join("no-such-key"),
        ))
        .fetch()
        .await,
    );
    assert!(
        message.contains("cannot read the SSH private key"),
        "{message}"
    );
}

#[test]
fn credentials_must_fit_the_url() {
    let state = std::env::temp_dir();
    let token = || GitCredentials::token(SecretString::new("t0ken"));
    for (url, credentials, ok) in [
        ("https://git.example/zones.git", token(), true),
        ("http://git.example/zones.git", token(), false),
        ("http://localhost:8080/zones.git", token(), true),
        ("ssh://git@git.example/zones.git", token(), false),
        (
            "git@git.example:zones.git",
            GitCredentials::ssh_key("/k"),
            true,
        ),
        (
            "https://git.example/zones.git",
            GitCredentials::ssh_key("/k"),
            false,
        ),
        (
            "https://bot:t0ken@git.example/zones.git",
            GitCredentials::Anonymous,
            false,
        ),
    ] {
        let result =
            GitSource::new(GitSourceOptions::new(url, &state).with_credentials(credentials));
        assert_eq!(result.is_ok(), ok, "{url}: {result:?}");
        if let Err(e) = result {
            assert!(!e.to_string().contains("t0ken"), "{e}");
        }
    }
    for (path, ok) in [("zones", true), ("../zones", false), ("a/../b", false)] {
        let result =
            GitSource::new(GitSourceOptions::new("/srv/zones.git", &state).with_path(path));
        assert_eq!(result.is_ok(), ok, "{path}");
    }
    let result =
        GitSource::new(GitSourceOptions::new("/srv/zones.git", &state).with_reference("a..b"));
    assert!(result.is_err());
}
