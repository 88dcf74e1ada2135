module go-mesh

go 1.17
