//! The store contract on the embedded default store.
use std::sync::Arc;

use mebyo_store::{EmbeddedStore, EventStore, OpenOptions};

async fn fresh() -> Arc<dyn EventStore> {
    // The directory outlives the test on purpose: the store's writer thread may
    // still hold the file when the test body returns.
    let dir = tempfile::Builder::new()
        .prefix("mebyo-contract-")
        .tempdir()
        .unwrap()
        .keep();
    EmbeddedStore::create(&dir, [7; 16], 0).unwrap();
    Arc::new(
        EmbeddedStore::open(&dir, OpenOptions::default())
            .unwrap()
            .store,
    )
}

mebyo_store::store_contract_tests!(fresh());
