/**
 * The distribution API's URL paths, in one place (distribution-spec "Endpoints"). Repository names
 * and references are validated before they get here: names by the reference grammar, references as
 * tags or digests.
 */
export const api = {
  ping: () => '/v2/',
  manifest: (name: string, reference: string) => `/v2/${name}/manifests/${reference}`,
  blob: (name: string, digest: string) => `/v2/${name}/blobs/${digest}`,
  uploads: (name: string) => `/v2/${name}/blobs/uploads/`,
  tags: (name: string) => `/v2/${name}/tags/list`,
  referrers: (name: string, digest: string) => `/v2/${name}/referrers/${digest}`,
};
