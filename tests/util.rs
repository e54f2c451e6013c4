//! The table type's printers and the one model cache.

use mistral_rs_bench::engine::cache;
use mistral_rs_bench::util::table::Table;
use std::sync::Arc;

#[test]
fn one_table_three_printers() {
    let mut t = Table::new(&["case", "median>"]);
    t.push(["a|b", "1.0 ms"]);
    t.push(["c, \"d\"".to_string()]);
    assert_eq!(
        t.markdown(),
        "| case | median |\n|---|---:|\n| a\\|b | 1.0 ms |\n| c, \"d\" |  |\n"
    );
    assert_eq!(
        t.csv().unwrap(),
        "case,median\na|b,1.0 ms\n\"c, \"\"d\"\"\",\n"
    );
    assert_eq!(
        t.json(),
        serde_json::json!([
            {"case": "a|b", "median": "1.0 ms"},
            {"case": "c, \"d\"", "median": ""}
        ])
    );
}

#[test]
fn the_model_cache_holds_one_model_and_drops_the_previous() {
    let a = cache::get_or_load("test/a", || Ok(vec![1u8; 16])).unwrap();
    let again = cache::get_or_load("test/a", || -> anyhow::Result<Vec<u8>> {
        panic!("a is cached: no second load")
    })
    .unwrap();
    assert!(Arc::ptr_eq(&a, &again));
    assert_eq!(Arc::strong_count(&a), 3); // a, again, the cache
    drop(again);
    let b = cache::get_or_load("test/b", || Ok(String::from("b"))).unwrap();
    assert_eq!(Arc::strong_count(&a), 1, "loading b dropped the cache's a");
    assert_eq!(cache::held().as_deref(), Some("test/b"));
    assert_eq!(*b, "b");
    // a failed load leaves nothing held
    assert!(cache::get_or_load::<u8>("test/c", || anyhow::bail!("no")).is_err());
    assert_eq!(cache::held(), None);
    cache::release();
}
