//! The storage corpus (`tests/storage`) on spt, under mirage-test-support's minimal spt loader
//! with 32 MiB of guest memory (`solo5-spt --mem=32`): the kv_ro image over tar and over FAT,
//! each case attached as its block device `t`, ends every case with exit 0 (a correct read) or
//! exit 1 and the case's error, never a panic (255), a fault or a hang; and reads the good
//! images (FAT12, FAT16, FAT32 made by mkfs.fat and mtools, a GNU tar) as unix does.

use std::path::PathBuf;

use mirage_test_support::image::Builder;
use mirage_test_support::solo5::spt::{self, Devices};
use mirage_test_support::tree::{root, scratch};

mirage_test_support::mini_spt_child_test!();

/// `corpus(ext)` is every case of `tests/storage` ending in `ext`, with the error text it
/// must give (`None` for the ones that read correctly).
fn corpus(ext: &str) -> Vec<(PathBuf, Option<String>)> {
    let dir = root().join("tests/storage");
    let list = std::fs::read_to_string(dir.join("hostile/cases.tsv")).unwrap();
    let mut cases: Vec<(PathBuf, Option<String>)> = list
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .filter(|(file, _)| file.ends_with(ext))
        .map(|(file, expect)| {
            let error = expect.strip_prefix("error:").map(String::from);
            (dir.join("hostile").join(file), error)
        })
        .collect();
    let good: &[&str] = match ext {
        ".tar" => &["gnu.tar"],
        _ => &["fat12.img", "fat16.img", "fat32.img"],
    };
    cases.extend(good.iter().map(|f| (dir.join("good").join(f), None)));
    cases
}

#[test]
fn every_case_ends_cleanly_on_spt_in_32_mib() {
    let mut report = Vec::new();
    for (store, ext) in [("tar", ".tar"), ("fat", ".img")] {
        let image = Builder::new(scratch("solo5-storage"))
            .host_target()
            .configured("examples/kv_ro", "spt", &[&format!("--kv_ro={store}")]);
        let cases = corpus(ext);
        assert!(cases.len() >= 17, "{store}: {} cases", cases.len());
        for (file, error) in cases {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let started = std::time::Instant::now();
            // Warnings only: the cases' files are not printed (the loader's pipe stays small).
            let run = spt::run(
                &image.path,
                "--logs=warn",
                Devices::default().block("t", &file),
            );
            let guest = spt::guest(&run);
            match &error {
                None => assert_eq!(run.status, Some(0), "{name}: {guest}{}", run.stderr),
                Some(text) => {
                    assert_eq!(
                        run.status,
                        Some(1),
                        "{name} fails cleanly: {guest}{}",
                        run.stderr
                    );
                    assert!(guest.contains(text.as_str()), "{name}: {guest}");
                }
            }
            report.push(format!(
                "{store} {name}: exit {:?} in {:?}",
                run.status,
                started.elapsed()
            ));
        }
    }
    // An 8 GiB sparse archive whose member claims all of it: refused whole, in 32 MiB.
    let image = Builder::new(scratch("solo5-storage"))
        .host_target()
        .configured("examples/kv_ro", "spt", &["--kv_ro=tar"]);
    let sparse = scratch("solo5-storage").join("sparse-8gib.tar");
    std::fs::copy(
        root().join("tests/storage/hostile/tar-8gib-member.tar"),
        &sparse,
    )
    .unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .unwrap();
    file.set_len(512 + (8 << 30) + 1024).unwrap();
    let run = spt::run(
        &image.path,
        "--logs=warn",
        Devices::default().block("t", &sparse),
    );
    let guest = spt::guest(&run);
    assert_eq!(run.status, Some(1), "{guest}{}", run.stderr);
    assert!(guest.contains("too large to read whole"), "{guest}");
    std::fs::remove_file(&sparse).unwrap();
    eprintln!("{}", report.join("\n"));
}
