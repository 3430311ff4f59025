from kit.migrations import run_env
from services.permissions.models import Base

run_env(Base.metadata)
