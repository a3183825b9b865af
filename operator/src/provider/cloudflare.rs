//! The cloudflare provider. Being written in this change: until it lands, building
//! one reports that it is not available, and nothing is sent anywhere.

use zentralink_model::resources::HttpApiSettings;
use zentralink_model::secrets::SecretString;

use super::resilience::Limits;
use super::{Provider, ProviderError};

/// The cloudflare provider.
#[derive(Debug)]
pub struct CloudflareProvider;

impl CloudflareProvider {
    pub fn connect(
        _settings: &HttpApiSettings,
        _credentials: SecretString,
        _limits: Limits,
    ) -> Result<Box<dyn Provider>, ProviderError> {
        Err(ProviderError::Unsupported(
            "the cloudflare provider is not available in this build yet".into(),
        ))
    }
}
