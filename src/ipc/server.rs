//! placeholder
pub struct Server;
pub struct ServerConfig;
pub type MutationRequest = ();
