//! The scraping job: crawls the ticket sites and keeps events current.
//!
//! So far this holds the image pipeline that publishes each scraped event's flyer and
//! hero images ([`images`]); the crawler that feeds it lands with its own issue, and
//! the job is registered then.

pub mod images;
