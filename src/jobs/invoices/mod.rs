//! `invoices`, in progress: the `jobs` queue's `notify-order-confirmed` and
//! `notify-seller-ticket-sold` rows, each issuing a fiscal document with FEU. What is
//! here so far is the FEU client ([`feu`]); the job itself (claiming through
//! `crate::queue`, the `invoices` row, the PDF in the private bucket, the
//! `order_invoice` notification) is not written yet and is not registered.

pub mod feu;
