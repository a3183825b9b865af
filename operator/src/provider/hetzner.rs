//! The hetzner provider. Being written in this change: until it lands, building
//! one reports that it is not available, and nothing is sent anywhere.

use zentralink_model::resources::HttpApiSettings;
use zentralink_model::secrets::SecretString;

use super::resilience::Limits;
use super::{Provider, ProviderError};

/// The hetzner provider.
#[derive(Debug)]
pub struct HetznerProvider;

impl HetznerProvider {
    pub fn connect(
        _settings: &HttpApiSettings,
        _credentials: SecretString,
        _limits: Limits,
    ) -> Result<Box<dyn Provider>, ProviderError> {
        Err(ProviderError::Unsupported(
            "the hetzner provider is not available in this build yet".into(),
        ))
    }
}
