//! Untrusted bytes (references, manifests, auth challenges, layer tars) through the same entry
//! functions a pull uses, from seeds and seeded random mutations: errors are fine, panics and
//! writes outside a layer's directory are not.

use std::fs;
use std::io::Write;

use moat_cri::layer;
use moat_cri::oci::{self, Compression};
use moat_cri::reference::Reference;
use moat_cri::registry::parse_challenge;

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

/// Flips, inserts, deletes or duplicates a few bytes of `seed`.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 if at < v.len() => v[at] ^= 1 << rng.below(8),
            1 => v.insert(at, rng.next().to_le_bytes()[0]),
            2 if at < v.len() => {
                v.remove(at);
            }
            _ => {
                let end = (at + rng.below(16)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
        }
    }
    v
}

#[test]
fn references_and_challenges_never_panic() {
    let seeds: &[&[u8]] = &[
        b"busybox",
        b"registry:5000/ns/name:tag",
        b"docker.io/library/alpine@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        b"[::1]:5000/a/b:c",
        br#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull""#,
        br#"Basic realm="x""#,
    ];
    let mut rng = Rng(0x5eed_0001);
    for seed in seeds {
        for _ in 0..2000 {
            let input = String::from_utf8_lossy(&mutate(&mut rng, seed)).into_owned();
            if let Ok(r) = Reference::parse(&input) {
                // A reference that parsed prints as one that parses to the same thing.
                assert_eq!(
                    Reference::parse(&r.to_string()).as_ref(),
                    Ok(&r),
                    "{input:?}"
                );
            }
            let _ = parse_challenge(&input);
        }
    }
}

#[test]
fn manifests_never_panic() {
    let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let seeds = [
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{d}","size":2}},"layers":[{{"mediaType":"{}","digest":"{d}","size":0}}]}}"#,
            oci::OCI_MANIFEST,
            oci::OCI_CONFIG,
            oci::OCI_LAYER_GZIP
        ),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{d}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            oci::OCI_MANIFEST
        ),
    ];
    let mut rng = Rng(0x5eed_0002);
    for seed in &seeds {
        assert!(
            oci::parse_manifest(seed.as_bytes(), None).is_ok(),
            "seed parses"
        );
        for _ in 0..3000 {
            let input = mutate(&mut rng, seed.as_bytes());
            let _ = oci::parse_manifest(&input, Some(oci::DOCKER_MANIFEST));
        }
    }
}

fn seed_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).expect("link");
        }
        h.set_path(path).expect("path");
        h.set_cksum();
        b.append(&h, data).expect("append");
    };
    add("d", tar::EntryType::Directory, b"", None);
    add("d/f", tar::EntryType::Regular, b"hello", None);
    add("d/s", tar::EntryType::Symlink, b"", Some("f"));
    add("d/h", tar::EntryType::Link, b"", Some("d/f"));
    add("d/.wh.x", tar::EntryType::Regular, b"", None);
    b.into_inner().expect("tar")
}

#[test]
fn layer_tars_never_panic_or_write_outside() {
    let seed = seed_tar();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&seed).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let mut rng = Rng(0x5eed_0003);
    let work = tempfile::tempdir().expect("tempdir");
    for i in 0..400 {
        let (input, comp) = if i % 4 == 3 {
            (mutate(&mut rng, &gz), Compression::Gzip)
        } else {
            (mutate(&mut rng, &seed), Compression::None)
        };
        let dest = work.path().join("dest");
        fs::create_dir(&dest).expect("dest");
        let _ = layer::unpack(&input[..], comp, &dest);
        let names: Vec<_> = fs::read_dir(work.path())
            .expect("list work")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            ["dest"],
            "iteration {i} wrote outside its layer directory"
        );
        fs::remove_dir_all(&dest).expect("clean dest");
    }
}
