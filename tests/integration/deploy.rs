//! deploy/: the Kubernetes manifests parse as YAML and say what the README promises (an Indexed Job
//! whose pods take their shard from JOB_COMPLETION_INDEX, a merge Job, one shared claim), the
//! Dockerfile has its two stages, and the Slurm scripts pass the array index as the shard. (Nothing
//! here runs a cluster: `deploy/slurm/ci-test.sh` runs a real Slurm; no container engine runs here.)

use serde_yaml::Value;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn manifest(name: &str) -> Value {
    let path = root().join("deploy/k8s").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(v: &Value, path: &str) -> String {
    let mut node = v;
    for key in path.split('.') {
        node = match key.parse::<usize>() {
            Ok(i) => &node[i],
            Err(_) => &node[key],
        };
    }
    match node {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("{path}: not a scalar: {other:?}"),
    }
}

/// The container's environment as (name, value) pairs.
fn env(job: &Value) -> Vec<(String, String)> {
    job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| (text(e, "name"), text(e, "value")))
        .collect()
}

fn env_value(job: &Value, name: &str) -> String {
    env(job)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in the environment"))
        .1
}

/// The claim a Job's pods mount, and where.
fn claim(job: &Value) -> (String, String) {
    let spec = &job["spec"]["template"]["spec"];
    let volume = text(&spec["containers"][0]["volumeMounts"][0], "name");
    let mount = text(&spec["containers"][0]["volumeMounts"][0], "mountPath");
    let claim = spec["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| text(v, "name") == volume)
        .map(|v| text(v, "persistentVolumeClaim.claimName"))
        .expect("the mounted volume is declared");
    (claim, mount)
}

#[test]
fn kubernetes_indexed_job_merge_job_and_claim() {
    let (pvc, shards, merge) = (
        manifest("pvc.yaml"),
        manifest("shards-job.yaml"),
        manifest("merge-job.yaml"),
    );
    assert_eq!(text(&pvc, "kind"), "PersistentVolumeClaim");
    let modes = pvc["spec"]["accessModes"].as_sequence().unwrap();
    assert!(
        modes.contains(&Value::from("ReadWriteMany")),
        "shards on several nodes write"
    );

    for job in [&shards, &merge] {
        assert_eq!(text(job, "apiVersion"), "batch/v1");
        assert_eq!(text(job, "kind"), "Job");
        assert_eq!(text(job, "spec.template.spec.restartPolicy"), "Never");
        assert_eq!(claim(job).0, text(&pvc, "metadata.name"));
        assert!(
            env_value(job, "OUT").starts_with(&claim(job).1),
            "OUT is on the shared volume"
        );
    }
    // the shards: one pod per index, the shard from JOB_COMPLETION_INDEX, N = completions
    assert_eq!(text(&shards, "spec.completionMode"), "Indexed");
    assert_eq!(text(&shards, "spec.completions"), env_value(&shards, "SHARDS"));
    let run = text(&shards, "spec.template.spec.containers.0.args.0");
    assert!(run.contains(r#"--shard "$JOB_COMPLETION_INDEX/$SHARDS""#), "{run}");
    assert!(run.contains(r#"--out "$OUT/shard-$JOB_COMPLETION_INDEX""#), "{run}");
    let spec = env_value(&shards, "ARGS");
    let spec = spec.strip_prefix("sweep ").expect("a sweep by default");
    assert!(root().join(spec).is_file(), "{spec} is in the image's workloads/");
    // the merge: every shard folder, the same OUT, the same image
    let merge_run = text(&merge, "spec.template.spec.containers.0.args.0");
    assert!(merge_run.contains(r#"clustersim merge "$OUT"/shard-*"#), "{merge_run}");
    assert_eq!(env_value(&merge, "OUT"), env_value(&shards, "OUT"));
    assert_eq!(
        text(&merge, "spec.template.spec.containers.0.image"),
        text(&shards, "spec.template.spec.containers.0.image")
    );
}

#[test]
fn dockerfile_builds_then_copies_into_a_slim_runtime() {
    let text = std::fs::read_to_string(root().join("deploy/k8s/Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let stages: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(
        stages[0].ends_with(" AS build") && stages[1].contains("slim"),
        "{stages:?}"
    );
    assert!(lines.iter().any(|l| l.contains("cargo build --release --locked")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("COPY --from=build ") && l.contains("clustersim")));
    // every source copied from the context exists, and the runtime has the presets' folders
    for l in lines.iter().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let words: Vec<&str> = l.split_whitespace().collect();
        for src in &words[1..words.len() - 1] {
            assert!(root().join(src).exists(), "COPY {src}: not in the repository");
        }
    }
    let runtime = text.split("FROM ").nth(2).unwrap();
    for folder in ["hardware", "workloads"] {
        assert!(runtime.contains(&format!("COPY {folder} ")), "runtime lacks {folder}/");
    }
}

#[test]
fn slurm_scripts_pass_the_array_index_as_the_shard() {
    let shard = std::fs::read_to_string(root().join("deploy/slurm/shard.sbatch")).unwrap();
    assert!(shard.contains(r#"--shard "$k/$n""#) && shard.contains("SLURM_ARRAY_TASK_ID"));
    let merge = std::fs::read_to_string(root().join("deploy/slurm/merge.sbatch")).unwrap();
    assert!(merge.contains(r#"merge "$out"/shard-*"#));
}
