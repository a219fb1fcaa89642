package config

// Config is the service configuration.
type Config struct {
	Listen string `json:"listen"`
	Debug  bool   `json:"debug"`
}
