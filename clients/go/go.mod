module github.com/sessionkit/sessiond-go

go 1.19
