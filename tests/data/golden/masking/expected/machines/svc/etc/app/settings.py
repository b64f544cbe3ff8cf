DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.mysql',
        'PASSWORD': 'pattern-secret-1',
    },
}
SECRET_KEY = "django-secret-literal"
