// The observe benchmark's Go programs: `bench serve ADDR` answers "ok";
// `bench client URL N` sends N sequential GETs over one keep-alive connection and
// prints the total elapsed nanoseconds. Standard library only.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	switch os.Args[1] {
	case "serve":
		ln, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			panic(err)
		}
		fmt.Println("listening")
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	case "client":
		n, _ := strconv.Atoi(os.Args[3])
		c := &http.Client{}
		// Warm up the connection outside the measurement.
		for i := 0; i < 100; i++ {
			get(c, os.Args[2])
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			get(c, os.Args[2])
		}
		fmt.Println(time.Since(start).Nanoseconds())
	}
}

func get(c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
