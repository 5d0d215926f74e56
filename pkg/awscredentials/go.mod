module github.com/token-operator/token-operator/pkg/awscredentials

go 1.23.0

require github.com/aws/aws-sdk-go-v2 v1.41.2

require github.com/aws/smithy-go v1.24.1 // indirect
