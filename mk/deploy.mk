# Deployment targets; included from the Makefile. The k3d-* targets need docker, k3d, kubectl and helm;
# helm-lint / helm-template run offline through the Helm SDK (helm/tools/render.py).

CHART ?= helm/gitlab-copilot-agent
K3D_CLUSTER ?= copilot-agent-dev
K3D_IMAGE ?= gitlab-copilot-agent:dev
RELEASE ?= copilot-agent
NAMESPACE ?= copilot-agent
# The seed's .env.k3d: secrets (GITLAB_TOKEN, GITLAB_WEBHOOK_SECRET, GITHUB_TOKEN, ...) and plain settings
# (GITLAB_URL, COPILOT_PROVIDER_*, ...) alike; helm/tools/k3d_env.py splits it into the release's Secret
# and a ConfigMap every pod reads through extraEnvFrom (its values win over the chart's).
K3D_ENV ?= .env.k3d
K3D_ENV_DIR ?= .data/k3d
# Optional non-secret overrides (gitlab.url, copilot.providerType, ...), not committed.
K3D_VALUES ?= values-k3d.yaml
K3D_SECRET = $(RELEASE)-secrets
K3D_CONFIG = $(RELEASE)-k3d-env

.PHONY: k3d-up k3d-build k3d-deploy k3d-redeploy k3d-logs k3d-status k3d-down helm-lint helm-template

k3d-up: ## Create the k3d cluster; the API's LoadBalancer port 8000 is mapped to localhost:8080
	k3d cluster list $(K3D_CLUSTER) >/dev/null 2>&1 || \
		k3d cluster create $(K3D_CLUSTER) --port "8080:8000@loadbalancer" --wait
	kubectl config use-context k3d-$(K3D_CLUSTER)

k3d-build: ## Build the image and import it into the k3d cluster
	docker build -t $(K3D_IMAGE) .
	k3d image import $(K3D_IMAGE) --cluster $(K3D_CLUSTER)

k3d-deploy: $(VENV)/.installed ## Install or upgrade the release with values-local.yaml and the settings of $(K3D_ENV)
	$(PY) helm/tools/k3d_env.py $(K3D_ENV) $(K3D_ENV_DIR)
	kubectl create namespace $(NAMESPACE) --dry-run=client -o yaml | kubectl apply -f -
	kubectl label namespace $(NAMESPACE) --overwrite \
		pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
	kubectl -n $(NAMESPACE) create secret generic $(K3D_SECRET) --from-env-file=$(K3D_ENV_DIR)/secrets.env \
		--dry-run=client -o yaml | kubectl apply -f -
	kubectl -n $(NAMESPACE) create configmap $(K3D_CONFIG) --from-env-file=$(K3D_ENV_DIR)/config.env \
		--dry-run=client -o yaml | kubectl apply -f -
	helm upgrade --install $(RELEASE) $(CHART) --namespace $(NAMESPACE) \
		-f $(CHART)/values-local.yaml $(if $(wildcard $(K3D_VALUES)),-f $(K3D_VALUES)) \
		--set secrets.existingSecret=$(K3D_SECRET) --set 'extraEnvFrom[0].configMapRef.name=$(K3D_CONFIG)' \
		--wait --timeout 10m

k3d-redeploy: k3d-build k3d-deploy ## Rebuild, redeploy, and restart pods (the dev tag does not change)
	kubectl -n $(NAMESPACE) rollout restart deployment -l app.kubernetes.io/instance=$(RELEASE),app.kubernetes.io/name=gitlab-copilot-agent
	kubectl -n $(NAMESPACE) rollout status deployment -l app.kubernetes.io/instance=$(RELEASE) --timeout 5m

k3d-logs: ## Stream API and worker logs
	kubectl -n $(NAMESPACE) logs -f --prefix --max-log-requests 20 --tail 100 \
		-l 'app.kubernetes.io/instance=$(RELEASE),app.kubernetes.io/component in (api,worker)'

k3d-status: ## Pods, agent Jobs, services and the bootstrap hook
	kubectl -n $(NAMESPACE) get pods,jobs,svc,networkpolicies -o wide

k3d-down: ## Delete the k3d cluster
	k3d cluster delete $(K3D_CLUSTER)

helm-lint: setup ## Lint the chart with each shipped values file (offline)
	$(PY) helm/tools/render.py lint $(CHART)
	$(PY) helm/tools/render.py lint $(CHART) -f $(CHART)/values-local.yaml
	$(PY) helm/tools/render.py lint $(CHART) -f $(CHART)/values-production.yaml

helm-template: setup ## Render the chart with values-local.yaml (VALUES=... for another file)
	$(PY) helm/tools/render.py template $(CHART) --name $(RELEASE) --namespace $(NAMESPACE) \
		-f $(or $(VALUES),$(CHART)/values-local.yaml)
