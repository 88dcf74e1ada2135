module observe-bench

go 1.17
