package tokenrequest

// For the envtest suites, which live in package controller_test.
var CachedWithoutData = cachedWithoutData

const WithoutDataUnclaimed = withoutDataUnclaimed
