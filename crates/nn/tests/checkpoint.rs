//! Checkpoint files: bit-exact round trips, PyTorch name prefixes, half-precision conversion, and a clean
//! one-line error (never a panic) for every kind of broken file.

use loopgrad_autograd::ParamStore;
use loopgrad_nn::checkpoint::{
    load_weights, read_metadata, save_weights, CheckpointError, CheckpointReader, CheckpointWriter, LoadOptions, Policy,
};
use loopgrad_tensor::{Rng, Tensor};
use proptest::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::fs;
use std::path::{Path, PathBuf};

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loopgrad-nn-ckpt-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// A small model-shaped store: a Linear weight, a bias, a frozen carry init vector and a puzzle table.
fn small_store(seed: u64) -> ParamStore<f32> {
    let mut rng = Rng::new(seed);
    let mut store = ParamStore::new();
    store.add("inner.lm_head.weight", loopgrad_nn::init::lecun_linear(&mut rng, 6, 4));
    store.add("inner.q_head.bias", Tensor::from_slice(&[-5.0, -5.0], [2]));
    store.add_frozen("inner.H_init", loopgrad_nn::init::trunc_normal(&mut rng, [4], 1.0));
    store.add("inner.puzzle_emb.weights", loopgrad_nn::init::trunc_normal(&mut rng, [3, 4], 0.1));
    store
}

fn zeroed_like(store: &ParamStore<f32>) -> ParamStore<f32> {
    let mut out = ParamStore::new();
    for p in store.ids() {
        let t = Tensor::zeros(store.shape(p));
        if store.is_trainable(p) {
            out.add(store.name(p), t);
        } else {
            out.add_frozen(store.name(p), t);
        }
    }
    out
}

fn bits(store: &ParamStore<f32>) -> Vec<(String, Vec<u32>)> {
    store
        .ids()
        .map(|p| (store.name(p).to_string(), store.value(p).data().iter().map(|x| x.to_bits()).collect()))
        .collect()
}

/// A safetensors file of raw `(name, dtype, shape, little-endian bytes)` entries, for files loopgrad would never
/// write (half precision, integer dtypes, PyTorch prefixes).
fn raw_file(entries: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(&str, TensorView)> =
        entries.iter().map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, &None).unwrap()
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn load_err(path: &Path, bytes: &[u8], store: &mut ParamStore<f32>) -> String {
    fs::write(path, bytes).unwrap();
    let before = bits(store);
    let err = load_weights(path, store, LoadOptions::default()).unwrap_err();
    assert_eq!(bits(store), before, "a failed load must leave the store untouched");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.starts_with(&path.display().to_string()), "names the file first: {msg}");
    msg
}

#[test]
fn f32_round_trip_is_bit_exact_including_edge_values_and_metadata() {
    let d = scratch_dir("roundtrip");
    let path = d.join("model.safetensors");
    let mut store = small_store(1);
    let edge = [0.0, -0.0, f32::MIN_POSITIVE / 3.0, f32::MAX, -f32::MIN_POSITIVE, 1.0 + f32::EPSILON];
    store.value_mut(store.get("inner.lm_head.weight").unwrap()).data_mut()[..6].copy_from_slice(&edge);
    save_weights(&path, &store, &[("config", r#"{"hidden_size":4}"#)]).unwrap();
    let mut loaded = zeroed_like(&store);
    let report = load_weights(&path, &mut loaded, LoadOptions::default()).unwrap();
    assert_eq!(bits(&loaded), bits(&store));
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    assert_eq!(report.metadata["config"], r#"{"hidden_size":4}"#);
    assert_eq!(report.metadata["format"], "pt");
    assert_eq!(read_metadata(&path).unwrap()["config"], r#"{"hidden_size":4}"#);
    let names: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["model.safetensors"], "the atomic write leaves no temporary file");
    fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn saving_never_follows_a_link_at_the_old_temporary_name_and_names_the_file_it_cannot_write() {
    // Was: save_weights wrote through `NAME.tmp` with File::create, following a symlink planted there (its target
    // was overwritten) and blocking forever on a FIFO there. It now goes through the one atomic writer.
    let d = scratch_dir("planted");
    let (precious, path) = (d.join("precious.txt"), d.join("model.safetensors"));
    fs::write(&precious, b"precious").unwrap();
    std::os::unix::fs::symlink(&precious, d.join("model.safetensors.tmp")).unwrap();
    save_weights(&path, &small_store(1), &[]).unwrap();
    assert_eq!(fs::read(&precious).unwrap(), b"precious");
    assert!(read_metadata(&path).is_ok());
    let missing = d.join("no").join("such").join("model.safetensors");
    let err = save_weights(&missing, &small_store(1), &[]).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: cannot write: ", missing.display())), "{err}");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn f64_store_round_trip_is_exact_and_f64_files_load_into_f32_stores_rounded() {
    let d = scratch_dir("f64");
    let path = d.join("model.safetensors");
    let mut store = ParamStore::<f64>::new();
    store.add("w", Tensor::from_slice(&[0.1, 1.0 / 3.0, -2.5e-300], [3]));
    save_weights(&path, &store, &[]).unwrap();
    let mut back = ParamStore::<f64>::new();
    back.add("w", Tensor::zeros([3]));
    load_weights(&path, &mut back, LoadOptions::default()).unwrap();
    assert_eq!(back.value(back.get("w").unwrap()), store.value(store.get("w").unwrap()));
    let mut single = ParamStore::<f32>::new();
    single.add("w", Tensor::zeros([3]));
    load_weights(&path, &mut single, LoadOptions::default()).unwrap();
    assert_eq!(single.value(single.get("w").unwrap()).data(), &[0.1f32, 1.0 / 3.0, -0.0]);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn torch_compile_and_wrapper_prefixes_are_stripped() {
    let d = scratch_dir("prefix");
    let path = d.join("pytorch.safetensors");
    let bytes = raw_file(&[
        ("_orig_mod.model.inner.lm_head.weight", Dtype::F32, vec![2, 2], f32_bytes(&[1.0, 2.0, 3.0, 4.0])),
        ("model.inner.H_init", Dtype::F32, vec![2], f32_bytes(&[5.0, 6.0])),
        ("_orig_mod.inner.q_head.bias", Dtype::F32, vec![1], f32_bytes(&[-5.0])),
    ]);
    fs::write(&path, bytes).unwrap();
    let mut store = ParamStore::<f32>::new();
    let w = store.add("inner.lm_head.weight", Tensor::zeros([2, 2]));
    let h = store.add_frozen("inner.H_init", Tensor::zeros([2]));
    let b = store.add("inner.q_head.bias", Tensor::zeros([1]));
    load_weights(&path, &mut store, LoadOptions::default()).unwrap();
    assert_eq!(store.value(w).data(), &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(store.value(h).data(), &[5.0, 6.0]);
    assert_eq!(store.value(b).data(), &[-5.0]);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn f16_and_bf16_tensors_are_converted_exactly() {
    let d = scratch_dir("half");
    let path = d.join("half.safetensors");
    let vals = [1.0f32, -0.5, 0.099_975_586, 65504.0, 6.0e-8];
    let f16: Vec<u8> = vals.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
    let bf16: Vec<u8> = vals.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
    // TRM stores its carry init buffers in the forward dtype (bfloat16) next to f32 weights.
    fs::write(
        &path,
        raw_file(&[("inner.H_init", Dtype::BF16, vec![5], bf16.clone()), ("a", Dtype::F16, vec![5], f16.clone())]),
    )
    .unwrap();
    let mut store = ParamStore::<f32>::new();
    let h = store.add_frozen("inner.H_init", Tensor::zeros([5]));
    let a = store.add("a", Tensor::zeros([5]));
    load_weights(&path, &mut store, LoadOptions::default()).unwrap();
    let want_f16: Vec<f32> = vals.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect();
    let want_bf16: Vec<f32> = vals.iter().map(|&x| half::bf16::from_f32(x).to_f32()).collect();
    assert_eq!(store.value(a).data(), &want_f16[..]);
    assert_eq!(store.value(h).data(), &want_bf16[..]);
    assert_eq!(store.value(a).data()[..2], [1.0, -0.5]);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn each_malformed_file_gives_its_own_clean_error() {
    let d = scratch_dir("malformed");
    let good_path = d.join("good.safetensors");
    let store = small_store(2);
    save_weights(&good_path, &store, &[]).unwrap();
    let good = fs::read(&good_path).unwrap();
    let bad = d.join("bad.safetensors");
    let mut target = zeroed_like(&store);

    let msg = load_err(&bad, &good[..good.len() - 10], &mut target);
    assert!(msg.contains("truncated or padded"), "truncated data: {msg}");

    let msg = load_err(&bad, &good[..40], &mut target);
    assert!(msg.contains("header length field says") && msg.contains("only 32 follow"), "cut in header: {msg}");

    let msg = load_err(&bad, &good[..5], &mut target);
    assert!(msg.contains("5 bytes long, too short"), "tiny file: {msg}");

    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let msg = load_err(&bad, &huge, &mut target);
    assert!(msg.contains("more than safetensors allows"), "flipped header length: {msg}");

    let mut short = good.clone();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap());
    short[..8].copy_from_slice(&(n - 20).to_le_bytes()); // the JSON padding is at most 7 spaces
    let msg = load_err(&bad, &short, &mut target);
    assert!(msg.contains("not valid JSON"), "header length too small: {msg}");

    let header_end = 8 + n as usize;
    let header = String::from_utf8(good[8..header_end].to_vec()).unwrap();
    let unknown = header.replacen("\"F32\"", "\"Q8K\"", 1);
    let msg = load_err(&bad, &[&good[..8], unknown.as_bytes(), &good[header_end..]].concat(), &mut target);
    assert!(msg.contains("has unknown dtype `Q8K`") && msg.contains("tensor `inner."), "unknown dtype: {msg}");

    let int_file = raw_file(&[("inner.lm_head.weight", Dtype::I32, vec![6, 4], vec![0; 96])]);
    let msg = load_err(&bad, &int_file, &mut target);
    assert!(
        msg.ends_with("tensor `inner.lm_head.weight` has dtype I32; only F32, F64, F16 and BF16 tensors can be loaded"),
        "{msg}"
    );

    let mut fewer = ParamStore::<f32>::new();
    fewer.add("inner.lm_head.weight", Tensor::zeros([6, 4]));
    save_weights(&good_path, &fewer, &[]).unwrap();
    let msg = load_err(&bad, &fs::read(&good_path).unwrap(), &mut target);
    assert!(msg.ends_with("tensor `inner.q_head.bias` is missing"), "missing (first in store order): {msg}");

    let mut transposed = small_store(2);
    let w = transposed.get("inner.lm_head.weight").unwrap();
    *transposed.value_mut(w) = Tensor::zeros([4, 6]);
    save_weights(&good_path, &transposed, &[]).unwrap();
    let msg = load_err(&bad, &fs::read(&good_path).unwrap(), &mut target);
    assert!(msg.ends_with("tensor `inner.lm_head.weight` has shape [4, 6] in the file, expected [6, 4]"), "{msg}");

    let mut extra = small_store(2);
    extra.add("inner.L_level.layers.9.mlp.down_proj.weight", Tensor::zeros([1]));
    save_weights(&good_path, &extra, &[]).unwrap();
    let msg = load_err(&bad, &fs::read(&good_path).unwrap(), &mut target);
    assert!(msg.contains("1 unexpected tensor(s): `inner.L_level.layers.9.mlp.down_proj.weight`"), "{msg}");
    let lenient = LoadOptions { unexpected: Policy::Ignore, ..Default::default() };
    let report = load_weights(&bad, &mut target, lenient).unwrap();
    assert_eq!(report.unexpected, ["inner.L_level.layers.9.mlp.down_proj.weight"]);

    let clash = raw_file(&[
        ("inner.H_init", Dtype::F32, vec![4], vec![0; 16]),
        ("model.inner.H_init", Dtype::F32, vec![4], vec![0; 16]),
    ]);
    let msg = load_err(&bad, &clash, &mut target);
    assert!(msg.contains("`inner.H_init` and `model.inner.H_init` both load as `inner.H_init`"), "{msg}");

    let err = load_weights(&d.join("absent.safetensors"), &mut target, LoadOptions::default()).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }) && err.to_string().contains("absent.safetensors: cannot read"));
    fs::remove_dir_all(&d).unwrap();
}

/// A file from a hand-written header (padded as safetensors pads it) and data section.
fn file_from_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    [&(h.len() as u64).to_le_bytes()[..], &h, data].concat()
}

#[test]
fn bad_data_offsets_and_sizes_name_the_tensor() {
    let cases = [
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            "tensor `b`: data offsets [4, 8] leave a gap or overlap (the previous tensor ends at 8)",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            "tensor `a`: shape [3] of F32 needs 12 bytes but its data offsets span 8",
        ),
        (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, "tensor `a`: data offsets [8, 0] run backwards"),
        (r#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, "tensor `a`: `shape` is not a list of sizes"),
        (r#"{"a":{"dtype":"F32","shape":[2]}}"#, "tensor `a`: `data_offsets` is not a pair of byte offsets"),
        (
            r#"{"__metadata__":{"step":3},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            "`__metadata__` must map strings to strings",
        ),
    ];
    for (header, want) in cases {
        let err = CheckpointReader::from_bytes("x.safetensors", file_from_header(header, &[0; 8])).err().unwrap();
        assert_eq!(err.to_string(), format!("x.safetensors: not a valid safetensors file: {want}"));
    }
    // A tensor of usize::MAX bytes: the safetensors crate's own offset sum would overflow on it.
    let m = usize::MAX;
    let huge = format!(r#"{{"a":{{"dtype":"U8","shape":[{m}],"data_offsets":[0,{m}]}}}}"#);
    let err = CheckpointReader::from_bytes("x.safetensors", file_from_header(&huge, &[0; 8])).err().unwrap();
    assert!(
        err.to_string()
            .ends_with(&format!("the header describes {m} data bytes but 8 follow it (truncated or padded file?)")),
        "{err}"
    );
    let ok = file_from_header(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8]);
    assert!(CheckpointReader::from_bytes("x.safetensors", ok).is_ok(), "the helper builds valid files");
}

#[test]
fn a_nan_or_infinite_value_is_refused_naming_the_tensor_and_element() {
    // Was: loaded silently; `eval` then printed "exact 0.00%, loss NaN" with exit code 0, and a resumed run
    // failed a step later blaming the learning rate.
    let d = scratch_dir("non-finite");
    let bad = d.join("bad.safetensors");
    let mut target = zeroed_like(&small_store(5));
    let mut store = small_store(5);
    let w = store.get("inner.lm_head.weight").unwrap();
    store.value_mut(w).data_mut()[7] = f32::NAN;
    save_weights(&bad, &store, &[]).unwrap();
    let msg = load_err(&bad, &fs::read(&bad).unwrap(), &mut target);
    assert!(msg.ends_with("tensor `inner.lm_head.weight` holds NaN at element 7"), "{msg}");
    let inf_bf16 = half::bf16::INFINITY.to_le_bytes();
    let half_file = raw_file(&[("inner.H_init", Dtype::BF16, vec![4], [[0u8; 2], [0; 2], inf_bf16, [0; 2]].concat())]);
    let r = CheckpointReader::from_bytes("h.safetensors", half_file).unwrap();
    let msg = r.check("inner.H_init", &[4]).unwrap_err().to_string();
    assert_eq!(msg, "h.safetensors: tensor `inner.H_init` holds inf at element 2");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn missing_parameters_can_be_kept_when_asked() {
    let d = scratch_dir("missing-ok");
    let path = d.join("partial.safetensors");
    let mut part = ParamStore::<f32>::new();
    part.add("inner.q_head.bias", Tensor::from_slice(&[1.0, 2.0], [2]));
    save_weights(&path, &part, &[]).unwrap();
    let mut store = small_store(3);
    let before = store.value(store.get("inner.H_init").unwrap()).clone();
    let opts = LoadOptions { missing: Policy::Ignore, ..Default::default() };
    let report = load_weights(&path, &mut store, opts).unwrap();
    assert_eq!(report.missing, ["inner.lm_head.weight", "inner.H_init", "inner.puzzle_emb.weights"]);
    assert_eq!(store.value(store.get("inner.q_head.bias").unwrap()).data(), &[1.0, 2.0]);
    assert_eq!(store.value(store.get("inner.H_init").unwrap()), &before);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn metadata_errors_name_the_key() {
    let mut w = CheckpointWriter::<f32>::new();
    w.set_meta("train.step", "not a number");
    let r = CheckpointReader::from_bytes("ckpt.safetensors", w.to_bytes().unwrap()).unwrap();
    let msg = r.json::<u64>("train.step").unwrap_err().to_string();
    assert!(msg.starts_with("ckpt.safetensors: metadata `train.step`: cannot parse"), "{msg}");
    let msg = r.meta("train.rng").unwrap_err().to_string();
    assert_eq!(msg, "ckpt.safetensors: metadata `train.rng`: missing");
}

/// A valid file to mutate in the property tests.
fn sample_file() -> Vec<u8> {
    let store = small_store(4);
    let mut w = CheckpointWriter::with_params(&store);
    w.set_json("config", &serde_json::json!({"hidden_size": 4}));
    w.to_bytes().unwrap()
}

/// Parses `bytes` and, if that succeeds, loads them into a store (exercising every check).
fn try_everything(bytes: Vec<u8>) {
    if let Ok(mut r) = CheckpointReader::from_bytes("fuzz.safetensors", bytes) {
        let mut store = small_store(5);
        let _ = r.load_params(&mut store, Policy::Ignore);
        let _ = r.json::<serde_json::Value>("config");
        let _ = r.finish(Policy::Error);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        try_everything(bytes);
    }

    #[test]
    fn random_header_lengths_with_json_bodies_never_panic(len in any::<u64>(), body in "\\{.{0,80}\\}") {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(body.as_bytes());
        try_everything(bytes);
    }

    #[test]
    fn random_tensor_headers_never_panic(
        entries in proptest::collection::vec(
            (
                prop::sample::select(vec!["F32", "BF16", "U8", "I64", "F8_E4M3", "X9"]),
                proptest::collection::vec(prop_oneof![0u64..5, any::<u64>()], 0..3),
                (prop_oneof![0u64..40, any::<u64>()], prop_oneof![0u64..40, any::<u64>()]),
            ),
            0..4,
        ),
        data_len in 0usize..40,
    ) {
        let body: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (dtype, shape, (s, e)))| {
                format!(r#""t{i}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{s},{e}]}}"#)
            })
            .collect();
        try_everything(file_from_header(&format!("{{{}}}", body.join(",")), &vec![0; data_len]));
    }

    #[test]
    fn corrupted_valid_files_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = sample_file();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        try_everything(bytes);
    }
}

#[test]
fn a_layout_version_this_build_does_not_know_is_refused() {
    let with_version = |v: &str| {
        let mut w = CheckpointWriter::<f32>::new();
        w.set_meta("loopgrad.version", v);
        CheckpointReader::from_bytes("ckpt.safetensors", w.to_bytes().unwrap()).err().map(|e| e.to_string())
    };
    assert_eq!(with_version(loopgrad_nn::checkpoint::FORMAT_VERSION), None, "the current layout reads");
    assert_eq!(
        with_version("2").as_deref(),
        Some(
            "ckpt.safetensors: metadata `loopgrad.version`: layout 2 comes from a newer loopgrad; this build reads \
             layouts 1 to 1"
        )
    );
    for bad in ["0", "one", "", "-1", "1.0"] {
        let msg = with_version(bad).unwrap_or_else(|| panic!("version {bad:?} was accepted"));
        assert!(msg.ends_with(&format!("`{bad}` is not a layout version (1 to 1)")), "{msg}");
    }
    // A file with no loopgrad key at all (PyTorch's save_file) is plain safetensors, and reads.
    let plain = file_from_header(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8]);
    assert!(CheckpointReader::from_bytes("x.safetensors", plain).is_ok());
}

#[test]
fn identical_contents_give_identical_bytes_in_a_fixed_order() {
    // Was: the metadata came out in HashMap order, different for every writer, so two identical runs' files
    // differed from byte 33 on.
    let store = small_store(7);
    let file = || {
        let mut w = CheckpointWriter::with_params(&store);
        for key in ["train.state", "config", "train.optim.step", "zeta", "alpha", "m1", "m2", "m3"] {
            w.set_meta(key, format!("value of {key}"));
        }
        w.to_bytes().unwrap()
    };
    let first = file();
    for _ in 0..8 {
        assert!(file() == first, "two writers of the same contents wrote different bytes");
    }
    // The order itself: `__metadata__` first with sorted keys, then the tensors sorted by name.
    let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&first[8..8 + n]).unwrap();
    assert!(header.starts_with(r#"{"__metadata__":{"alpha":"value of alpha","config":"#), "{header}");
    let names = ["inner.H_init", "inner.lm_head.weight", "inner.puzzle_emb.weights", "inner.q_head.bias"];
    let at: Vec<usize> = names.iter().map(|t| header.find(&format!("\"{t}\"")).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "tensors in name order: {header}");
    // And the safetensors crate reads what we write, to the bit.
    let st = safetensors::SafeTensors::deserialize(&first).unwrap();
    let w = st.tensor("inner.lm_head.weight").unwrap();
    let want: Vec<u8> =
        store.value(store.get("inner.lm_head.weight").unwrap()).data().iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!((w.dtype(), w.shape(), w.data()), (Dtype::F32, &[6usize, 4][..], &want[..]));
}
