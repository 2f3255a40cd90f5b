#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "store/azure/azure_identity.h"
#include "store/object_store.h"

namespace shoal {

// How to reach one Azure storage account. Exactly one of `key`, `sas` and `token` is set.
struct AzureConfig {
  std::string account;
  std::string key;       // base64 account key (Shared Key)
  std::string sas;       // SAS token, without a leading '?'
  // Entra ID bearer tokens (shared by every store of the process that uses the same source).
  std::shared_ptr<TokenCredential> token;
  std::string endpoint;  // "https://ACCOUNT.blob.core.windows.net" or Azurite's
                         // "http://127.0.0.1:10000/devstoreaccount1"; no trailing '/'
  std::string source;    // where the credential came from, named in auth errors

  // From AZURE_STORAGE_CONNECTION_STRING (AccountName/AccountKey, BlobEndpoint,
  // SharedAccessSignature, UseDevelopmentStorage=true), else AZURE_STORAGE_ACCOUNT with
  // AZURE_STORAGE_KEY, else with AZURE_STORAGE_SAS_TOKEN, else with an Entra ID identity
  // (EntraConfig::FromEnvironment: a client secret, workload identity, a managed identity);
  // the endpoint from AZURE_STORAGE_BLOB_ENDPOINT when set. kInvalidArgument naming the
  // variables when none is usable. Nothing is fetched here: tokens come with the first request.
  static Result<AzureConfig> FromEnvironment();
  // The account an URL names (az://container@NAME/key): the same variables, each with
  // AccountVariablePrefix(NAME) in front (SHOAL_AZ_WEST_AZURE_STORAGE_CONNECTION_STRING for
  // "west"), so each account has its own endpoint and credentials. The account name defaults
  // to NAME, and without a key, SAS or connection string of its own the account is reached
  // with the process's Entra ID identity (the unprefixed AZURE_TENANT_ID... variables).
  static Result<AzureConfig> ForAccount(const std::string& name);
  static std::string AccountVariablePrefix(const std::string& name);
  static Result<AzureConfig> FromConnectionString(std::string_view text, std::string source);
};

// Blobs of one container: Put Blob for small objects, Put Block + Put Block List for large
// ones (uncommitted blocks are invisible, so no partial blob is ever readable), ranged Get
// Blob, Get Blob Properties, List Blobs with markers, Delete Blob.
// `account_name`: the name an URL gave the account ("" for the default), shown by Describe()
// as az://container@NAME.
std::shared_ptr<ObjectStore> NewAzureStore(const AzureConfig& config, const std::string& container,
                                           const std::string& account_name = "");

// The Shared Key signature of a request (exposed for tests): returns "SharedKey account:sig".
// `headers` must hold every header the request will carry, names in any case; `path` is the
// URL path as sent (percent-encoded); `query` the decoded query parameters.
std::string AzureSharedKeyAuthorization(
    const AzureConfig& config, const std::string& method, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& query,
    const std::vector<std::pair<std::string, std::string>>& headers, uint64_t content_length);

}  // namespace shoal
