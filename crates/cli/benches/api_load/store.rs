//! Postgres without HTTP: the very `Store` calls a `POST /customers` makes
//! (`authenticate`, then `insert_customer`), issued straight from the bench on a pool of
//! the same size as the server's, to show what the database alone sustains.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use outdial_domain::{Clock, Customer, CustomerRef, SystemClock};
use outdial_store::{Company, Store};

use crate::load::Caller;

/// `Store::authenticate` with the demo key.
pub struct Authenticate {
    pub store: Store,
    pub key: Arc<str>,
}

impl Caller for Authenticate {
    async fn call(&mut self) -> Result<(), String> {
        match self.store.authenticate(&self.key).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("the demo key did not authenticate".to_owned()),
            Err(e) => Err(format!("authenticate: {e}")),
        }
    }
}

/// `Store::insert_customer` of the template customer under a fresh id `<prefix>-<n>`.
pub struct Insert {
    pub store: Store,
    pub company: Arc<Company>,
    pub template: Arc<Customer>,
    pub prefix: Arc<str>,
    pub next: Arc<AtomicU64>,
}

impl Caller for Insert {
    async fn call(&mut self) -> Result<(), String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut customer = Customer::clone(&self.template);
        customer.id = CustomerRef::new(&format!("{}-{n}", self.prefix))
            .map_err(|e| format!("customer id: {e:?}"))?;
        self.store
            .insert_customer(self.company.id, &customer, SystemClock.now())
            .await
            .map(|_| ())
            .map_err(|e| format!("insert_customer: {e}"))
    }
}
