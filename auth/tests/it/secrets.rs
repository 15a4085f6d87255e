use brain_auth::TenantId;
use brain_auth::secrets::{SecretMap, SecretPath, SecretStore, SecretString, VaultSecretStore};
use brain_migrations::testing::setting;

pub fn vault() -> VaultSecretStore {
    let addr = setting("VAULT_ADDR").expect("VAULT_ADDR: run `cargo xtask infra up`");
    let token = setting("VAULT_TOKEN").expect("VAULT_TOKEN");
    VaultSecretStore::new(&addr, &token, "secret").unwrap()
}

#[tokio::test]
async fn secrets_round_trip_through_openbao_and_are_destroyed() {
    let store = vault();
    let path = SecretPath::connector(TenantId::new(), "wordpress").unwrap();
    assert!(store.get(&path).await.unwrap().is_none());

    let values: SecretMap = [(
        "application_password".to_owned(),
        SecretString::new("abcd efgh"),
    )]
    .into_iter()
    .collect();
    store.put(&path, &values).await.unwrap();
    assert_eq!(store.get(&path).await.unwrap(), Some(values.clone()));

    let replaced: SecretMap = [("application_password".to_owned(), SecretString::new("new"))]
        .into_iter()
        .collect();
    store.put(&path, &replaced).await.unwrap();
    assert_eq!(store.get(&path).await.unwrap(), Some(replaced));

    store.destroy(&path).await.unwrap();
    assert!(store.get(&path).await.unwrap().is_none());
    store.destroy(&path).await.unwrap(); // idempotent
}

#[tokio::test]
async fn a_bad_token_is_refused_not_mistaken_for_absence() {
    let addr = setting("VAULT_ADDR").unwrap();
    let store = VaultSecretStore::new(&addr, "not-a-token", "secret").unwrap();
    let path = SecretPath::system("nothing-here").unwrap();
    let err = store.get(&path).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}
