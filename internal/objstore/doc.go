// Package objstore is Troupe's one door to S3-compatible object storage
// (AWS S3, GCS's interoperability API, Ceph RGW, SeaweedFS, MinIO,
// versitygw): a Store of whole objects under one bucket and key prefix, with
// bounded reads, configured once per installation (docs/archive.md).
//
// The client is minio-go v7, not the AWS SDK for Go v2. Both are maintained
// and of similar weight here (17 modules and ~8.6 MB in a minimal binary for
// minio-go, 18 and ~11.7 MB for the SDK's s3 and config packages, measured
// with v7.4.1 and service/s3 v1.115.0). What decides it is that minio-go is
// written for S3-compatible stores: custom endpoints and path-style
// addressing are plain options, and it sends a request any of the stores
// above accepts, while the SDK (since service/s3 v1.73) adds CRC32
// checksums in aws-chunked trailers to every upload unless told not to,
// which GCS, Ceph and older MinIO and SeaweedFS refuse. minio-go also reads
// credentials the ways that matter in a cluster and on a workstation: the
// AWS environment variables, the shared credentials file (AWS_PROFILE,
// AWS_SHARED_CREDENTIALS_FILE, credential_process), web identity (EKS
// IRSA), the ECS/EKS container endpoint and the EC2 instance metadata
// service. What it lacks against the SDK: profiles in ~/.aws/config that
// assume a role or use SSO; a credential_process covers those.
package objstore
