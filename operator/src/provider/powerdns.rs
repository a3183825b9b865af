//! The powerdns provider. Being written in this change: until it lands, building
//! one reports that it is not available, and nothing is sent anywhere.

use zentralink_model::resources::PowerDnsSettings;
use zentralink_model::secrets::SecretString;

use super::resilience::Limits;
use super::{Provider, ProviderError};

/// The powerdns provider.
#[derive(Debug)]
pub struct PowerDnsProvider;

impl PowerDnsProvider {
    pub fn connect(
        _settings: &PowerDnsSettings,
        _credentials: SecretString,
        _limits: Limits,
    ) -> Result<Box<dyn Provider>, ProviderError> {
        Err(ProviderError::Unsupported(
            "the powerdns provider is not available in this build yet".into(),
        ))
    }
}
