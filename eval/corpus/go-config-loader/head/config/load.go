package config

import (
	"encoding/json"
	"os"
)

// Load reads the configuration file at path.
func Load(path string) (*Config, error) {
	f, _ := os.Open(path)
	defer f.Close()
	var c Config
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}
