// go-mesh plays one service of a small HTTP mesh on loopback. Run several copies with
// different names and ports (see run-mesh.sh) and observe them with `ebpfctl observe`.
//
// Every request to a service calls each of its downstreams in turn, then answers 200 (or
// 502 when a downstream failed or answered 5xx). A service may also fail on its own
// (-fail-rate), call an optional dependency now and then (-sometimes), and drive
// load into the mesh (-load, -every). Standard library only.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	name := flag.String("name", envOr("NAME", "service"), "service name (also read from $NAME)")
	listen := flag.String("listen", "127.0.0.1:9090", "address to serve on")
	calls := flag.String("calls", "", "comma-separated downstream URLs called per request")
	failRate := flag.Float64("fail-rate", 0, "fraction of requests answered 500")
	load := flag.String("load", "", "URL to call repeatedly (a load generator)")
	every := flag.Duration("every", 500*time.Millisecond, "interval between load requests")
	sometimes := flag.String("sometimes", "", "URL called on a fraction of requests (-sometimes-rate); its failures are ignored")
	sometimesRate := flag.Float64("sometimes-rate", 0.2, "fraction of requests that call -sometimes")
	flag.Parse()

	var downstream []string
	for _, c := range strings.Split(*calls, ",") {
		if c = strings.TrimSpace(c); c != "" {
			downstream = append(downstream, c)
		}
	}
	client := &http.Client{Timeout: 2 * time.Second}

	handler := func(w http.ResponseWriter, r *http.Request) {
		if *failRate > 0 && rand.Float64() < *failRate {
			http.Error(w, *name+": injected failure", http.StatusInternalServerError)
			return
		}
		status := http.StatusOK
		var parts []string
		for _, u := range downstream {
			resp, err := client.Get(u)
			if err != nil {
				status = http.StatusBadGateway
				parts = append(parts, fmt.Sprintf("%q:%q", u, err.Error()))
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				status = http.StatusBadGateway
			}
			parts = append(parts, fmt.Sprintf("%q:%d", u, resp.StatusCode))
		}
		if *sometimes != "" && rand.Float64() < *sometimesRate {
			if resp, err := client.Get(*sometimes); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, "{\"service\":%q,\"path\":%q,\"calls\":{%s}}\n", *name, r.URL.Path, strings.Join(parts, ","))
	}

	if *load != "" {
		go func() {
			for range time.Tick(*every) {
				resp, err := client.Get(*load)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	log.Printf("%s listening on %s, calling %v", *name, *listen, downstream)
	log.Fatal(http.ListenAndServe(*listen, http.HandlerFunc(handler)))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
