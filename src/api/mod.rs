//! HTTP api
